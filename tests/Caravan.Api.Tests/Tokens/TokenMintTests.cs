using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Caravan.Api.Auth;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources;

namespace Caravan.Api.Tests.Tokens;

/// <summary>
/// <c>POST /api/v1/token</c> (contract section 9.1): every body version camelAI's clients send,
/// camelAI's answer, and each error in camelAI's STS shape <c>{"error": "..."}</c>.
/// </summary>
public sealed class TokenMintTests(CaravanApp app)
{
    private const string MySql = """{"type": "mysql", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""";

    public static TheoryData<string, int, string, string?> Versions() => new()
    {
        // body ({A} stands for a source id), expected ttl, expected scope, expected srcs ("A" or none)
        { """{"uid": "user-1"}""", 900, "query", null },
        { """{"uid": "user-1", "srcs": ["{A}"]}""", 900, "query", "A" },
        { """{"srcs": [{A}], "uid": "user-1"}""", 900, "query", "A" },
        { """{"uid": "user-1", "srcs": ["{A}"], "scopes": ["query"], "ttl": 600, "knowledge_base_entries": ["kb-1"], "reference_queries": [{"title": "t", "query": "SELECT 1"}]}""", 600, "query", "A" },
        { """{"uid": "user-1", "scopes": ["read"], "ttl": 60}""", 60, "read", null },
        { """{"uid": "user-1", "scopes": ["read", "query"], "ttl": "120"}""", 120, "query", null },
        { """{"sub": "1", "src": "{A}"}""", 900, "query", "A" },
        { """{"sub": "1", "src": "{A}", "thread_id": "th-9"}""", 900, "query", "A" },
        { """{"sub": "1", "scopes": ["query"], "ttl": 900, "src": "{A}", "tid": "th-9"}""", 900, "query", "A" },
        { """{"uid": "user-1", "tid": null, "thread_id": null, "knowledge_base_entries": null, "reference_queries": []}""", 900, "query", null },
    };

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task Every_body_version_gets_camelAIs_answer_and_a_token_with_the_claims_it_asked_for(
        string body, int ttl, string scope, string? sources)
    {
        var org = await app.NewOrganizationAsync();
        var a = await org.Http.CreateSourceAsync(MySql);
        await org.Http.CreateSourceAsync(MySql);
        var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        using var response = await org.Http.PostJsonAsync(TokenKit.MintUrl, body.Replace("{A}", a.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal));
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        var answer = JsonNode.Parse(text)!.AsObject();
        Assert.Equal(["access_token", "token_type", "expires_in"], answer.Select(p => p.Key));
        Assert.Equal("bearer", answer["token_type"]!.GetValue<string>());
        Assert.Equal(ttl, answer["expires_in"]!.GetValue<int>());

        var token = answer["access_token"]!.GetValue<string>();
        var header = TokenKit.Header(token);
        Assert.Equal("ES256", header["alg"]!.GetValue<string>());
        Assert.Equal("JWT", header["typ"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(header["kid"]!.GetValue<string>()));
        var claims = TokenKit.Payload(token);
        Assert.Equal(body.Contains("\"sub\"", StringComparison.Ordinal) ? "1" : "user-1", claims["sub"]!.GetValue<string>());
        Assert.Equal(org.Organization, claims["org"]!.GetValue<string>());
        Assert.Equal(org.KeyId, claims["key_id"]!.GetValue<string>());
        Assert.Equal(scope, claims["scope"]!.GetValue<string>());
        Assert.Equal(("caravan", "caravan-api"), (claims["iss"]!.GetValue<string>(), claims["aud"]!.GetValue<string>()));
        var iat = claims["iat"]!.GetValue<long>();
        Assert.InRange(iat, before - 1, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        Assert.Equal(iat, claims["nbf"]!.GetValue<long>());
        Assert.Equal(iat + ttl, claims["exp"]!.GetValue<long>());
        Assert.False(string.IsNullOrEmpty(claims["jti"]!.GetValue<string>()));
        if (sources is null)
        {
            Assert.Null(claims["srcs"]);
        }
        else
        {
            Assert.Equal([a], claims["srcs"]!.AsArray().Select(id => id!.GetValue<long>()));
        }

        // Nothing of Caravan's that the contract keeps out of a token: no key, no hash, no secret.
        Assert.DoesNotContain(org.Key, token, StringComparison.Ordinal);
        string[] names = ["aud", "exp", "iat", "iss", "jti", "key_id", "nbf", "org", "scope", "sub", .. sources is null ? Array.Empty<string>() : ["srcs"]];
        Assert.Equal(names.Order(StringComparer.Ordinal), claims.Select(p => p.Key).Order(StringComparer.Ordinal));

        using var carrier = app.TokenClient(token);
        var listed = await carrier.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
        Assert.Equal(sources is null ? 2 : 1, listed["count"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("/api/v1/token")]
    [InlineData("/api/v1/token/")]
    public async Task The_route_answers_with_and_without_the_trailing_slash(string url)
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.PostJsonAsync(url, """{"uid": "u"}""").Expect(HttpStatusCode.OK);

        Assert.Equal("bearer", answer["token_type"]!.GetValue<string>());
    }

    public static TheoryData<string, string> Refusals() => new()
    {
        { "{}", "uid: This field is required." },
        { """{"uid": ""}""", "uid: This field may not be blank." },
        { """{"uid": "   "}""", "uid: This field may not be blank." },
        { """{"sub": ""}""", "sub: This field may not be blank." },
        { """{"uid": null}""", "uid: This field may not be null." },
        { """{"uid": 42}""", "uid: Not a valid string." },
        { """{"uid": "a\u0000b"}""", "uid: Null characters are not allowed." },
        { $$"""{"uid": "{{new string('u', 256)}}"}""", "uid: Ensure this field has no more than 255 characters." },
        { """{"uid": "u", "sub": "u"}""", "sub: Send uid or sub (its older name), not both." },
        { """{"uid": "u", "ttl": 59}""", "ttl: Ensure this value is greater than or equal to 60." },
        { """{"uid": "u", "ttl": 901}""", "ttl: Ensure this value is less than or equal to 900." },
        { """{"uid": "u", "ttl": 0}""", "ttl: Ensure this value is greater than or equal to 60." },
        { """{"uid": "u", "ttl": 99999999999999999999}""", "ttl: Ensure this value is less than or equal to 900." },
        { """{"uid": "u", "ttl": 120.5}""", "ttl: A valid integer is required." },
        { """{"uid": "u", "ttl": "soon"}""", "ttl: A valid integer is required." },
        { """{"uid": "u", "ttl": null}""", "ttl: This field may not be null." },
        { """{"uid": "u", "scopes": ["admin"]}""", "scopes: Item 1 is not a valid scope: use \"query\" or \"read\"." },
        { """{"uid": "u", "scopes": ["read", "write"]}""", "scopes: Item 2 is not a valid scope: use \"query\" or \"read\"." },
        { """{"uid": "u", "scopes": []}""", "scopes: This list may not be empty." },
        { """{"uid": "u", "scopes": "query"}""", "scopes: Expected a list of items but got type \"str\"." },
        { """{"uid": "u", "srcs": []}""", "srcs: This list may not be empty." },
        { """{"uid": "u", "srcs": "12"}""", "srcs: Expected a list of items but got type \"str\"." },
        { """{"uid": "u", "srcs": ["twelve"]}""", "srcs: Item 1 is not a valid source id." },
        { """{"uid": "u", "srcs": [0]}""", "srcs: Item 1 is not a valid source id." },
        { """{"uid": "u", "srcs": [null]}""", "srcs: Item 1 is not a valid source id." },
        { $$"""{"uid": "u", "srcs": [{{string.Join(", ", Enumerable.Range(1, 101))}}]}""", "srcs: Ensure this field has no more than 100 elements." },
        { """{"uid": "u", "src": ""}""", "src: Not a valid source id." },
        { """{"uid": "u", "src": "1", "srcs": ["1"]}""", "src: Send srcs or src (its older, single form), not both." },
        { """{"uid": "u", "tid": 5}""", "tid: Not a valid string." },
        { """{"uid": "u", "knowledge_base_entries": "kb"}""", "knowledge_base_entries: Expected a list of items but got type \"str\"." },
        { """{"uid": "u", "model": "o3"}""", "model: Not a valid field for a token request." },
        { """{"ttl": 5, "scopes": ["x"]}""", "uid: This field is required. scopes: Item 1 is not a valid scope: use \"query\" or \"read\". ttl: Ensure this value is greater than or equal to 60." },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task Each_bad_body_is_a_400_in_the_STS_shape_naming_its_fields(string body, string error)
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.SendAsync("POST", TokenKit.MintUrl, body);

        answer.AssertExactly(HttpStatusCode.BadRequest, new JsonObject { ["error"] = error }.ToJsonString(Relaxed));
    }

    [Fact]
    public async Task Another_organizations_source_a_deleted_one_and_a_missing_one_get_the_same_answer()
    {
        var org = await app.NewOrganizationAsync();
        var other = await app.NewOrganizationAsync();
        var mine = await org.Http.CreateSourceAsync(MySql);
        var deleted = await org.Http.CreateSourceAsync(MySql);
        await org.Http.DeleteAsync(new Uri($"/api/v1/sources/{deleted}/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.NoContent);
        var theirs = await other.Http.CreateSourceAsync(MySql);
        var missing = theirs + 1_000_000;

        foreach (var (field, id) in new[] { ("srcs", theirs), ("srcs", deleted), ("srcs", missing), ("src", theirs), ("src", missing) })
        {
            var body = field == "srcs" ? $$"""{"uid": "u", "srcs": ["{{mine}}", "{{id}}"]}""" : $$"""{"uid": "u", "src": {{id}}}""";

            var answer = await org.Http.SendAsync("POST", TokenKit.MintUrl, body);

            answer.AssertExactly(HttpStatusCode.BadRequest, $$"""{"error":"{{field}}: {{id}} is not a data source of your organization."}""");
        }
    }

    [Fact]
    public async Task Refusals_of_the_key_the_body_and_the_media_type_speak_the_STS_shape_too()
    {
        var org = await app.NewOrganizationAsync();
        using var anonymous = app.CreateClient();
        using var stranger = app.CreateClient();
        stranger.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKeys.NewKey());

        var missing = await anonymous.SendAsync("POST", TokenKit.MintUrl, """{"uid": "u"}""");
        missing.AssertExactly(HttpStatusCode.Unauthorized, """{"error":"Authentication credentials were not provided."}""");
        Assert.Equal("Bearer", missing.WwwAuthenticate);
        var invalid = await stranger.SendAsync("POST", TokenKit.MintUrl, """{"uid": "u"}""");
        invalid.AssertExactly(HttpStatusCode.Unauthorized, """{"error":"Invalid API key."}""");
        Assert.Equal("Bearer", invalid.WwwAuthenticate);

        (await org.Http.SendAsync("POST", TokenKit.MintUrl, """{"uid": "u",""")).AssertStatus(HttpStatusCode.BadRequest);
        var malformed = (await org.Http.SendAsync("POST", TokenKit.MintUrl, """{"uid": "u",""")).Json.AsObject();
        Assert.Equal(["error"], malformed.Select(p => p.Key));
        Assert.StartsWith("Malformed JSON: ", malformed["error"]!.GetValue<string>(), StringComparison.Ordinal);
        (await org.Http.SendAsync("POST", TokenKit.MintUrl, """["uid"]""")).AssertExactly(HttpStatusCode.BadRequest, """{"error":"Expected a JSON object."}""");
        (await org.Http.SendAsync("POST", TokenKit.MintUrl, "uid=u", "application/x-www-form-urlencoded"))
            .AssertExactly(HttpStatusCode.UnsupportedMediaType, """{"error":"Unsupported media type \"application/x-www-form-urlencoded\" in request."}""");
        var huge = $$"""{"uid": "u", "tid": "{{new string('t', 1024 * 1024)}}"}""";
        (await org.Http.SendAsync("POST", TokenKit.MintUrl, huge)).AssertExactly(HttpStatusCode.RequestEntityTooLarge, """{"error":"Request body too large."}""");
    }

    [Fact]
    public async Task A_token_cannot_mint_tokens()
    {
        var org = await app.NewOrganizationAsync();
        using var carrier = app.TokenClient(await org.MintAsync("""{"uid": "u"}"""));

        var answer = await carrier.SendAsync("POST", TokenKit.MintUrl, """{"uid": "someone-else", "ttl": 900}""");

        answer.AssertExactly(HttpStatusCode.Forbidden, """{"error":"This token does not allow this action."}""");
    }

    [Fact]
    public async Task A_token_sent_as_X_API_Key_is_not_a_key()
    {
        var org = await app.NewOrganizationAsync();
        var token = await org.MintAsync("""{"uid": "u"}""");
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Add("X-API-Key", token);

        var answer = await client.SendAsync("GET", "/api/v1/sources/");

        answer.AssertExactly(HttpStatusCode.Unauthorized, """{"detail":"Invalid API key."}""");
    }

    private static readonly System.Text.Json.JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
