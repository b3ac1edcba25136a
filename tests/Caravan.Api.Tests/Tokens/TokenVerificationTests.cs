using System.Buffers.Text;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources;

namespace Caravan.Api.Tests.Tokens;

/// <summary>
/// A token is what its signature says and nothing else: every forgery, alteration or expired token
/// is a 401 <c>{"detail": "Invalid token."}</c>, and the signature verifies with the published
/// JWKS alone.
/// </summary>
public sealed class TokenVerificationTests(CaravanApp app)
{
    private const string MySql = """{"type": "mysql", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""";

    [Fact]
    public async Task Altered_forged_unsigned_and_expired_tokens_are_401()
    {
        var org = await app.NewOrganizationAsync();
        var a = await org.Http.CreateSourceAsync(MySql);
        var b = await org.Http.CreateSourceAsync(MySql);
        var token = await org.MintAsync($$"""{"uid": "alice", "srcs": ["{{a}}"], "scopes": ["read"]}""");
        var (kid, serverKey) = await app.ServerKeyAsync();
        using var stranger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var parts = token.Split('.');
        var claims = TokenKit.Payload(token);
        JsonObject With(Action<JsonObject> change)
        {
            var changed = claims.DeepClone().AsObject();
            change(changed);
            return changed;
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var forgeries = new Dictionary<string, string>
        {
            ["payload widened, signature kept"] = parts[0] + "." + TokenKit.Encode(With(c => c.Remove("srcs"))) + "." + parts[2],
            ["scope raised, signature kept"] = parts[0] + "." + TokenKit.Encode(With(c => c["scope"] = "query")) + "." + parts[2],
            ["alg none"] = TokenKit.Encode(new JsonObject { ["alg"] = "none", ["typ"] = "JWT", ["kid"] = kid }) + "." + parts[1] + ".",
            ["alg none, signature kept"] = TokenKit.Encode(new JsonObject { ["alg"] = "none", ["typ"] = "JWT", ["kid"] = kid }) + "." + parts[1] + "." + parts[2],
            ["signature cut"] = token[..^10],
            ["signature removed"] = parts[0] + "." + parts[1] + ".",
            ["signature of another token"] = parts[0] + "." + parts[1] + "." + (await org.MintAsync("""{"uid": "alice"}""")).Split('.')[2],
            ["signed by a key not in the store"] = TokenKit.Sign(TokenKit.Es256Header("not-in-the-store"), claims, stranger),
            ["signed by another key under a known kid"] = TokenKit.Sign(TokenKit.Es256Header(kid), claims, stranger),
            ["HS256 with the public key as secret"] = Hs256(TokenKit.Encode(new JsonObject { ["alg"] = "HS256", ["typ"] = "JWT", ["kid"] = kid }), parts[1], serverKey),
            ["expired"] = TokenKit.Sign(TokenKit.Es256Header(kid), With(c => (c["iat"], c["nbf"], c["exp"]) = (now - 1000, now - 1000, now - 100)), serverKey),
            ["not valid yet"] = TokenKit.Sign(TokenKit.Es256Header(kid), With(c => (c["nbf"], c["exp"]) = (now + 600, now + 900)), serverKey),
            ["no expiry"] = TokenKit.Sign(TokenKit.Es256Header(kid), With(c => c.Remove("exp")), serverKey),
            ["another audience"] = TokenKit.Sign(TokenKit.Es256Header(kid), With(c => c["aud"] = "someone-else"), serverKey),
            ["another issuer"] = TokenKit.Sign(TokenKit.Es256Header(kid), With(c => c["iss"] = "camelai"), serverKey),
            ["no minting key"] = TokenKit.Sign(TokenKit.Es256Header(kid), With(c => c.Remove("key_id")), serverKey),
            ["another organization"] = TokenKit.Sign(TokenKit.Es256Header(kid), With(c => c["org"] = "someone-else"), serverKey),
            ["unknown scope"] = TokenKit.Sign(TokenKit.Es256Header(kid), With(c => c["scope"] = "admin"), serverKey),
            ["sources as text"] = TokenKit.Sign(TokenKit.Es256Header(kid), With(c => c["srcs"] = "all"), serverKey),
            ["no kid"] = TokenKit.Sign(new JsonObject { ["alg"] = "ES256", ["typ"] = "JWT" }, claims, serverKey),
        };

        foreach (var (name, forged) in forgeries)
        {
            using var client = app.TokenClient(forged);
            foreach (var url in new[] { "/api/v1/sources/", $"/api/v1/sources/{b}/", $"/api/v1/sources/{a}/" })
            {
                var answer = await client.GetRawAsync(url);
                Assert.True(answer.Status == HttpStatusCode.Unauthorized && answer.Body == TokenKit.InvalidToken, $"{name} on {url}: {answer}");
                Assert.Equal("Bearer", answer.WwwAuthenticate);
            }
        }

        // The same claims, signed by the server's key, are good: the refusals above are about what was changed.
        using var resigned = app.TokenClient(TokenKit.Sign(TokenKit.Es256Header(kid), claims, serverKey));
        (await resigned.GetRawAsync($"/api/v1/sources/{a}/")).AssertStatus(HttpStatusCode.OK);
        (await resigned.GetRawAsync($"/api/v1/sources/{b}/")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
    }

    [Fact]
    public async Task A_tokens_signature_verifies_with_the_JWKS_key_alone()
    {
        var org = await app.NewOrganizationAsync();
        var token = await org.MintAsync("""{"uid": "alice"}""");
        using var anonymous = app.CreateClient();

        // Nothing but the public document: no credentials, no library of Caravan's.
        using var response = await anonymous.GetAsync(new Uri(TokenKit.JwksUrl, UriKind.Relative), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var jwks = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        var jwk = jwks["keys"]!.AsArray().Single(k => k!["kid"]!.GetValue<string>() == TokenKit.Kid(token))!;
        Assert.Equal(["alg", "crv", "kid", "kty", "use", "x", "y"], jwk.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal(("EC", "P-256", "ES256", "sig"), (jwk["kty"]!.GetValue<string>(), jwk["crv"]!.GetValue<string>(), jwk["alg"]!.GetValue<string>(), jwk["use"]!.GetValue<string>()));
        using var key = ECDsa.Create(new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint { X = Base64Url.DecodeFromChars(jwk["x"]!.GetValue<string>()), Y = Base64Url.DecodeFromChars(jwk["y"]!.GetValue<string>()) },
        });

        var parts = token.Split('.');
        var signed = Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]);
        Assert.True(key.VerifyData(signed, Base64Url.DecodeFromChars(parts[2]), HashAlgorithmName.SHA256));
        Assert.False(key.VerifyData(Encoding.ASCII.GetBytes(parts[0] + "." + TokenKit.Encode(new JsonObject { ["sub"] = "mallory" })), Base64Url.DecodeFromChars(parts[2]), HashAlgorithmName.SHA256));
    }

    [Fact]
    public async Task The_JWKS_needs_no_credentials_and_holds_no_private_half()
    {
        var org = await app.NewOrganizationAsync();
        await org.MintAsync("""{"uid": "alice"}""");
        using var anonymous = app.CreateClient();

        foreach (var url in new[] { TokenKit.JwksUrl, TokenKit.JwksUrl + "/" })
        {
            var jwks = await anonymous.GetAsync(new Uri(url, UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
            Assert.Equal(["keys"], jwks.AsObject().Select(p => p.Key));
            Assert.NotEmpty(jwks["keys"]!.AsArray());
            Assert.All(jwks["keys"]!.AsArray(), k => Assert.Null(k!["d"]));
        }
    }

    [Fact]
    public async Task A_value_that_is_neither_a_key_nor_a_token_is_an_invalid_key()
    {
        using var client = app.TokenClient("eyJhbGciOiJFUzI1NiJ9.not*base64.x");

        (await client.GetRawAsync("/api/v1/sources/")).AssertExactly(HttpStatusCode.Unauthorized, """{"detail":"Invalid API key."}""");
    }

    private static string Hs256(string header, string payload, ECDsa serverKey)
    {
        var secret = serverKey.ExportSubjectPublicKeyInfo();
        var input = header + "." + payload;
        return input + "." + Base64Url.EncodeToString(HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(input)));
    }
}
