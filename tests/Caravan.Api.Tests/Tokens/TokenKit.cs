using System.Buffers.Text;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tokens;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace Caravan.Api.Tests.Tokens;

/// <summary>Minting tokens through the API, carrying them, taking them apart, and forging them.</summary>
internal static class TokenKit
{
    public const string MintUrl = "/api/v1/token";
    public const string JwksUrl = "/api/v1/.well-known/jwks.json";
    public const string InvalidToken = """{"detail":"Invalid token."}""";
    public const string NotAllowed = """{"detail":"This token does not allow this action."}""";

    /// <summary>Mints a token with the organization's key; the answer must be a 200.</summary>
    public static async Task<string> MintAsync(this OrgClient org, string body) =>
        (await org.Http.PostJsonAsync(MintUrl, body).Expect(HttpStatusCode.OK))["access_token"]!.GetValue<string>();

    /// <summary>A client of <paramref name="app"/> that sends <paramref name="token"/> as <c>Authorization: Bearer</c>.</summary>
    public static HttpClient TokenClient<T>(this WebApplicationFactory<T> app, string token)
        where T : class
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public static HttpClient WithBearer(this HttpClient client, string token)
    {
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public static JsonObject Header(string token) => Part(token, 0);

    public static JsonObject Payload(string token) => Part(token, 1);

    public static string Kid(string token) => Header(token)["kid"]!.GetValue<string>();

    /// <summary>A token of <paramref name="header"/> and <paramref name="payload"/> signed (ES256) with <paramref name="key"/>.</summary>
    public static string Sign(JsonObject header, JsonObject payload, ECDsa key)
    {
        var input = Encode(header) + "." + Encode(payload);
        return input + "." + Base64Url.EncodeToString(key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256));
    }

    public static string Encode(JsonNode part) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(part.ToJsonString()));

    /// <summary>The server's current signing key, read from the running app (as a stolen store and master key would give it).</summary>
    public static async Task<(string Kid, ECDsa Key)> ServerKeyAsync<T>(this WebApplicationFactory<T> app)
        where T : class
    {
        var credentials = await app.Services.GetRequiredService<TokenSigningKeys>().SigningCredentialsAsync(TestContext.Current.CancellationToken);
        var key = (ECDsaSecurityKey)credentials.Key;
        return (key.KeyId, key.ECDsa);
    }

    /// <summary>The claims of a good token of <paramref name="org"/>'s key, valid from now for <paramref name="lifetime"/>.</summary>
    public static JsonObject Claims(OrgClient org, string uid = "alice", TimeSpan? lifetime = null, string scope = "query")
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return new JsonObject
        {
            ["iss"] = "caravan",
            ["aud"] = "caravan-api",
            ["iat"] = now,
            ["nbf"] = now,
            ["exp"] = now + (long)(lifetime ?? TimeSpan.FromMinutes(5)).TotalSeconds,
            ["sub"] = uid,
            ["org"] = org.Organization,
            ["scope"] = scope,
            ["key_id"] = org.KeyId,
            ["jti"] = Guid.NewGuid().ToString("N"),
        };
    }

    public static JsonObject Es256Header(string kid) => new() { ["alg"] = "ES256", ["kid"] = kid, ["typ"] = "JWT" };

    /// <summary>The JWKS document, read without credentials.</summary>
    public static async Task<JsonNode> JwksAsync(HttpClient anonymous) =>
        await anonymous.GetAsync(new Uri(JwksUrl, UriKind.Relative)).Expect(HttpStatusCode.OK);

    /// <summary>The kids the JWKS lists, read until <paramref name="done"/> holds (a replica reloads keys at most once a second).</summary>
    public static async Task<List<string>> JwksKidsAsync(HttpClient anonymous, Func<List<string>, bool> done)
    {
        for (var attempt = 0; ; attempt++)
        {
            var kids = (await JwksAsync(anonymous))["keys"]!.AsArray().Select(k => k!["kid"]!.GetValue<string>()).ToList();
            if (done(kids) || attempt == 30)
            {
                return kids;
            }

            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
    }

    private static JsonObject Part(string token, int index) =>
        JsonNode.Parse(Base64Url.DecodeFromChars(token.Split('.')[index]))!.AsObject();
}
