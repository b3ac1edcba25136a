using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Tokens;

namespace Caravan.Api.Tests.OpenApi;

/// <summary>
/// The tokens in the OpenAPI document: the STS route with camelAI's operation id, bodies and error
/// shape, the public key set, the token security scheme, and on every other operation whether a
/// token may call it.
/// </summary>
public sealed class TokenDocumentTests(CaravanApp app)
{
    private const string Mint = "/api/v1/token/";
    private const string Jwks = "/api/v1/.well-known/jwks.json";

    [Fact]
    public async Task The_STS_route_is_described_with_camelAIs_bodies_and_error_shape()
    {
        var document = await DocumentAsync();
        var operation = document["paths"]![Mint]!["post"]!;
        var schemas = document["components"]!["schemas"]!;

        Assert.Equal("token_create", Text(operation["operationId"]));
        Assert.Equal("#/components/schemas/STSTokenRequestRequest", Ref(operation["requestBody"]));
        var request = schemas["STSTokenRequestRequest"]!;
        Assert.Equal(
            ["knowledge_base_entries", "reference_queries", "scopes", "src", "srcs", "sub", "thread_id", "tid", "ttl", "uid"],
            request["properties"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal(["uid"], request["required"]!.AsArray().Select(Text));
        Assert.Equal((60, 900, 900), (request["properties"]!["ttl"]!["minimum"]!.GetValue<int>(), request["properties"]!["ttl"]!["maximum"]!.GetValue<int>(),
            request["properties"]!["ttl"]!["default"]!.GetValue<int>()));
        Assert.Equal(["query", "read"], request["properties"]!["scopes"]!["items"]!["enum"]!.AsArray().Select(Text));
        Assert.False(request["additionalProperties"]!.GetValue<bool>());

        Assert.Equal("#/components/schemas/STSTokenResponse", Ref(operation["responses"]!["200"]));
        Assert.Equal(["access_token", "expires_in", "token_type"], schemas["STSTokenResponse"]!["required"]!.AsArray().Select(Text).Order(StringComparer.Ordinal));
        foreach (var status in new[] { "400", "401", "403", "413", "415", "429" })
        {
            Assert.True(Ref(operation["responses"]![status]) == "#/components/schemas/STSError", $"{status} should answer STSError.");
        }

        Assert.Equal(["error"], schemas["STSError"]!["required"]!.AsArray().Select(Text));
        Assert.Equal(["ApiKeyAuth", "BearerAuth"], Schemes(operation).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task The_key_set_is_public_and_described()
    {
        var document = await DocumentAsync();
        var operation = document["paths"]![Jwks]!["get"]!;

        Assert.Equal("getJWKS", Text(operation["operationId"]));
        Assert.Empty(Schemes(operation));
        Assert.Equal("#/components/schemas/JWKS", Ref(operation["responses"]!["200"]));
        Assert.Null(operation["responses"]!["401"]);
        var key = document["components"]!["schemas"]!["JWKS"]!["properties"]!["keys"]!["items"]!;
        Assert.Equal(["alg", "crv", "kid", "kty", "use", "x", "y"], key["properties"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Every_operation_says_whether_a_token_may_call_it()
    {
        var document = await DocumentAsync();
        var scheme = document["components"]!["securitySchemes"]!["StsTokenAuth"]!;
        Assert.Equal(("http", "bearer", "JWT"), (Text(scheme["type"]), Text(scheme["scheme"]), Text(scheme["bearerFormat"])));
        var open = new HashSet<string>(["sources_list", "sources_retrieve", "sources_schemas_list", "sources_query_create"], StringComparer.Ordinal);

        foreach (var (path, operation) in document["paths"]!.AsObject()
            .SelectMany(p => p.Value!.AsObject().Select(o => (p.Key, o.Value!)))
            .Where(o => o.Key != Jwks))
        {
            var id = Text(operation["operationId"])!;
            Assert.True(open.Contains(id) == Schemes(operation).Contains("StsTokenAuth"), $"{id}: token scheme listed wrongly.");
            Assert.True(operation["responses"]!["403"] is not null, $"{id} ({path}) does not document the 403 a token may get.");
        }
    }

    [Fact]
    public async Task Described_token_answers_have_the_fields_the_api_really_sends()
    {
        var document = await DocumentAsync();
        var schemas = document["components"]!["schemas"]!;
        var org = await app.NewOrganizationAsync();
        using var anonymous = app.CreateClient();

        var minted = await org.Http.PostJsonAsync(TokenKit.MintUrl, """{"uid": "u"}""").Expect(HttpStatusCode.OK);
        var refused = await org.Http.PostJsonAsync(TokenKit.MintUrl, "{}").Expect(HttpStatusCode.BadRequest);
        var keys = await TokenKit.JwksAsync(anonymous);

        Assert.Equal(Properties(schemas["STSTokenResponse"]), Keys(minted));
        Assert.Equal(Properties(schemas["STSError"]), Keys(refused));
        Assert.Equal(Properties(schemas["JWKS"]), Keys(keys));
        Assert.Equal(Properties(schemas["JWKS"]!["properties"]!["keys"]!["items"]), Keys(keys["keys"]![0]!));
    }

    private async Task<JsonNode> DocumentAsync()
    {
        using var client = app.CreateClient();
        return await client.GetAsync(new Uri("/api/schema/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
    }

    private static List<string> Schemes(JsonNode operation) =>
        operation["security"]?.AsArray().SelectMany(r => r!.AsObject().Select(s => s.Key)).ToList() ?? [];

    private static string? Ref(JsonNode? holder) => Text(holder?["content"]?["application/json"]?["schema"]?["$ref"]);

    private static List<string> Properties(JsonNode? schema) => [.. schema!["properties"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal)];

    private static List<string> Keys(JsonNode body) => [.. body.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal)];

    private static string? Text(JsonNode? node) => node?.GetValue<string>();
}
