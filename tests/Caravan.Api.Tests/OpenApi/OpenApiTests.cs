using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caravan.Api.Connectors;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.OpenApi;

namespace Caravan.Api.Tests.OpenApi;

/// <summary>
/// The OpenAPI document at /api/schema/ and the docs page at /api/docs/, read over HTTP as a
/// client generator or a browser would. Expectations about types and fields come from the type
/// definitions, so a new type or field is checked without editing these tests.
/// </summary>
public partial class OpenApiTests(CaravanApp app)
{
    private static readonly string[] WriteMethods = ["post", "put", "patch"];

    [Theory]
    [InlineData("/api/schema/")]
    [InlineData("/api/schema")]
    public async Task Schema_is_an_OpenApi_3_0_json_document_served_without_an_api_key(string path)
    {
        using var client = app.CreateClient();
        using var response = await client.GetAsync(path, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var document = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        Assert.StartsWith("3.0.", Text(document["openapi"]), StringComparison.Ordinal);
        Assert.Equal("Caravan API", Text(document["info"]?["title"]));
        Assert.Contains("camelAI sources API", Text(document["info"]?["description"]), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/api/v1/sources/{id}/", "put")]
    [InlineData("/api/v1/sources/{id}/", "patch")]
    [InlineData("/api/v1/sources/{id}/", "delete")]
    [InlineData("/api/v1/sources/{id}/update-config/", "patch")]
    public async Task Every_write_of_a_source_documents_If_Match_and_its_412(string path, string method)
    {
        var document = await GetDocumentAsync();
        var operation = document["paths"]![path]![method]!;

        Assert.Contains(operation["parameters"]!.AsArray(), p => Text(p!["name"]) == "If-Match" && Text(p!["in"]) == "header");
        Assert.Equal("#/components/schemas/StaleSource", Text(operation["responses"]!["412"]!["content"]!["application/json"]!["schema"]!["$ref"]));
        Assert.NotNull(document["components"]!["schemas"]!["StaleSource"]!["properties"]!["current_etag"]);
    }

    [Fact]
    public async Task Only_the_writes_of_a_source_document_If_Match_and_its_412()
    {
        // Contract section 6: PUT, PATCH, update-config and DELETE. Testing a stored source writes
        // nothing of it and reads no If-Match.
        var document = await GetDocumentAsync();

        var guarded = Operations(document)
            .Where(o => o.Operation["parameters"]?.AsArray().Any(p => Text(p?["name"]) == "If-Match") == true || o.Operation["responses"]?["412"] is not null)
            .Select(o => $"{o.Method} {o.Path}");

        Assert.Equal(
            ["delete /api/v1/sources/{id}/", "patch /api/v1/sources/{id}/", "patch /api/v1/sources/{id}/update-config/", "put /api/v1/sources/{id}/"],
            guarded.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Schema_passes_the_OpenApi_validator()
    {
        using var client = app.CreateClient();
        var json = await client.GetStringAsync("/api/schema/", TestContext.Current.CancellationToken);

        var read = OpenApiDocument.Parse(json, "json");
        Assert.Empty(read.Diagnostic?.Errors ?? []);
        Assert.Empty(read.Document!.Validate(ValidationRuleSet.GetDefaultRuleSet()) ?? []);
    }

    [Fact]
    public async Task Every_sources_route_has_its_camelAI_operation_id_and_nothing_else_is_listed()
    {
        var document = await GetDocumentAsync();
        var expected = new List<(string Path, string Method, string OperationId)>
        {
            ("/api/v1/sources/", "get", "sources_list"),
            ("/api/v1/sources/", "post", "sources_create"),
            ("/api/v1/sources/add/", "post", "sources_add_create"),
            ("/api/v1/sources/{id}/", "get", "sources_retrieve"),
            ("/api/v1/sources/{id}/", "put", "sources_update"),
            ("/api/v1/sources/{id}/", "patch", "sources_partial_update"),
            ("/api/v1/sources/{id}/", "delete", "sources_destroy"),
            ("/api/v1/sources/{id}/update-config/", "patch", "sources_update_config_partial_update"),
            ("/api/v1/sources/{id}/config/", "get", "sources_config_retrieve"),
            ("/api/v1/sources/test/", "post", "sources_test_create"),
            ("/api/v1/sources/{id}/test/", "post", "sources_test_stored_create"),
            ("/api/v1/sources/{id}/schemas/", "get", "sources_schemas_list"),
            ("/api/v1/sources/{id}/revisions/", "get", "sources_revisions_list"),
            ("/api/v1/sources/{id}/query/", "post", "sources_query_create"),
            ("/api/v1/uploads/upload/", "post", "uploads_upload_create"),
            ("/api/v1/sources/{id}/files/", "post", "sources_files_create"),
            ("/api/v1/source-types/", "get", "source_types_list"),
            ("/api/v1/token/", "post", "token_create"),
            ("/api/v1/.well-known/jwks.json", "get", "getJWKS"),
        };
        expected.AddRange(SourceTypes.All
            .Where(t => t.AddRoute is not null)
            .Select(t => ($"/api/v1/sources/add/{t.AddRoute}/", "post", $"sources_add_{t.AddRoute}_create")));

        foreach (var (path, method, operationId) in expected)
        {
            Assert.Equal(operationId, Text(document["paths"]?[path]?[method]?["operationId"]));
        }

        // /healthz, /readyz, the schema and the docs page are not API operations.
        Assert.Equal(
            expected.Select(e => e.OperationId).Order(StringComparer.Ordinal),
            Operations(document).Select(o => Text(o.Operation["operationId"])).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Each_type_has_a_create_body_built_from_its_fields()
    {
        var document = await GetDocumentAsync();
        var unified = Resolve(document, RequestBodySchema(document, "/api/v1/sources/", "post"));
        Assert.Contains("type", Names(unified["required"]));
        Assert.Equal("type", Text(unified["discriminator"]?["propertyName"]));
        Assert.Equal(SourceTypes.All.Count, unified["oneOf"]!.AsArray().Count);

        foreach (var type in SourceTypes.All)
        {
            // The unified route picks the type's schema by its name; its own route uses the same one.
            var reference = Text(unified["discriminator"]?["mapping"]?[type.Name]);
            Assert.Contains(unified["oneOf"]!.AsArray(), option => Text(option?["$ref"]) == reference);
            if (type.AddRoute is not null)
            {
                Assert.Equal(reference, Text(RequestBodySchema(document, $"/api/v1/sources/add/{type.AddRoute}/", "post")["$ref"]));
            }

            var schema = Resolve(document, new JsonObject { ["$ref"] = reference });
            var properties = schema["properties"]!.AsObject();
            Assert.Equal([type.Name], properties["type"]!["enum"]!.AsArray().Select(Text));
            Assert.Equal(type.DisplayName, Text(properties["account_name"]?["default"]));
            Assert.Equal(
                type.Fields.Where(f => f.Required).Select(f => f.Name).Order(StringComparer.Ordinal),
                Names(schema["required"]).Order(StringComparer.Ordinal));
            foreach (var field in type.Fields)
            {
                var property = properties[field.Name];
                Assert.True(property is not null, $"{type.Name} has no property {field.Name}.");
                Assert.True(field.IsSecret == WriteOnly(property), $"{type.Name}.{field.Name}: writeOnly should be {field.IsSecret}.");
                if (field.Default is int port)
                {
                    Assert.Equal(port, property["default"]!.GetValue<int>());
                }
            }
        }
    }

    [Fact]
    public async Task Config_update_body_takes_every_field_of_every_type_optionally_with_secrets_write_only()
    {
        var document = await GetDocumentAsync();
        var schema = Resolve(document, RequestBodySchema(document, "/api/v1/sources/{id}/update-config/", "patch"));
        var properties = schema["properties"]!.AsObject();

        Assert.Empty(Names(schema["required"]));
        Assert.NotNull(properties["account_name"]);
        foreach (var field in SourceTypes.All.SelectMany(t => t.Fields))
        {
            var property = properties[field.Name];
            Assert.True(property is not null, $"update-config has no property {field.Name}.");
            Assert.True(field.IsSecret == WriteOnly(property), $"update-config {field.Name}: writeOnly should be {field.IsSecret}.");
        }
    }

    [Fact]
    public async Task Connection_bodies_are_described()
    {
        var document = await GetDocumentAsync();

        var legacy = Resolve(document, RequestBodySchema(document, "/api/v1/sources/add/", "post"));
        Assert.Equal(["account_name", "type"], Names(legacy["required"]).Order(StringComparer.Ordinal));
        Assert.Equal(
            SourceTypes.All.Select(t => t.Name).Order(StringComparer.Ordinal),
            legacy["properties"]!["type"]!["enum"]!.AsArray().Select(Text).Order(StringComparer.Ordinal));

        var put = Resolve(document, RequestBodySchema(document, "/api/v1/sources/{id}/", "put"));
        Assert.Equal(["account_name"], Names(put["required"]));

        var patch = Resolve(document, RequestBodySchema(document, "/api/v1/sources/{id}/", "patch"));
        Assert.Empty(Names(patch["required"]));
        Assert.NotNull(patch["properties"]?["account_name"]);
    }

    [Fact]
    public async Task The_query_result_documents_truncated_by_as_an_optional_member_naming_each_limit()
    {
        var document = await GetDocumentAsync();
        var result = document["components"]!["schemas"]!["QueryResult"]!;

        Assert.Equal(["columns", "duration_ms", "row_count", "rows", "truncated"], Names(result["required"]).Order(StringComparer.Ordinal));
        Assert.Equal(["max_rows", "max_result_bytes", "max_buffered_result_bytes"], Names(result["properties"]?["truncated_by"]?["enum"]));
    }

    [Fact]
    public async Task Error_shapes_are_components_referenced_by_every_sources_operation()
    {
        var document = await GetDocumentAsync();
        var schemas = document["components"]!["schemas"]!;
        Assert.Equal(["error", "errors"], Names(schemas["ValidationError"]?["required"]).Order(StringComparer.Ordinal));
        Assert.Equal("array", Text(schemas["ValidationError"]?["properties"]?["errors"]?["additionalProperties"]?["type"]));
        Assert.Equal(["detail"], Names(schemas["Detail"]?["required"]));
        Assert.Equal(["detail", "trace_id"], Names(schemas["ServerError"]?["required"]).Order(StringComparer.Ordinal));

        foreach (var (path, method, operation) in SourcesOperations(document))
        {
            // Testing a stored source is the one write that takes no body.
            var hasBody = WriteMethods.Contains(method) && Text(operation["operationId"]) != "sources_test_stored_create";
            var errors = new Dictionary<string, string> { ["401"] = "Detail", ["500"] = "ServerError" };
            if (hasBody)
            {
                errors["400"] = "ValidationError";
                errors["413"] = "Detail";
                errors["415"] = "Detail";
            }

            if (path.Contains("{id}", StringComparison.Ordinal) || Text(operation["operationId"]) == "sources_list")
            {
                errors["404"] = "Detail";
            }

            foreach (var (status, component) in errors)
            {
                Assert.True(
                    Text(operation["responses"]?[status]?["content"]?["application/json"]?["schema"]?["$ref"]) == $"#/components/schemas/{component}",
                    $"{method.ToUpperInvariant()} {path}: {status} should answer {component}.");
            }

            Assert.Equal(hasBody, operation["requestBody"] is not null);
        }
    }

    [Fact]
    public async Task Success_answers_are_described()
    {
        var document = await GetDocumentAsync();
        string? Success(string path, string method, string status) =>
            Text(document["paths"]?[path]?[method]?["responses"]?[status]?["content"]?["application/json"]?["schema"]?["$ref"]);

        Assert.Equal("#/components/schemas/PaginatedConnectionList", Success("/api/v1/sources/", "get", "200"));
        Assert.Equal("#/components/schemas/ConnectionCreated", Success("/api/v1/sources/", "post", "200"));
        Assert.Equal("#/components/schemas/Connection", Success("/api/v1/sources/add/", "post", "200"));
        Assert.Equal("#/components/schemas/Connection", Success("/api/v1/sources/{id}/", "get", "200"));
        Assert.Equal("#/components/schemas/Connection", Success("/api/v1/sources/{id}/", "put", "200"));
        Assert.Equal("#/components/schemas/Connection", Success("/api/v1/sources/{id}/", "patch", "200"));
        Assert.Equal("#/components/schemas/SourceConfigUpdated", Success("/api/v1/sources/{id}/update-config/", "patch", "200"));
        Assert.Equal("#/components/schemas/PaginatedRevisionList", Success("/api/v1/sources/{id}/revisions/", "get", "200"));
        Assert.NotNull(document["paths"]?["/api/v1/sources/{id}/"]?["delete"]?["responses"]?["204"]);

        var connection = document["components"]!["schemas"]!["Connection"]!;
        Assert.Equal(
            ["account_name", "created_at", "id", "is_fully_configured", "type"],
            Names(connection["required"]).Order(StringComparer.Ordinal));
        Assert.Equal("date-time", Text(connection["properties"]?["created_at"]?["format"]));
        Assert.True(document["components"]!["schemas"]!["PaginatedConnectionList"]!["properties"]!["next"]!["nullable"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Every_operation_documents_its_one_success_answer_as_declared_by_its_route()
    {
        // A route's declared answers replace what the generator guesses from the handler (a bare "OK").
        var document = await GetDocumentAsync();
        foreach (var (path, method, operation) in Operations(document))
        {
            var success = operation["responses"]!.AsObject().Where(r => r.Key.StartsWith('2')).ToList();
            Assert.True(success.Count == 1, $"{method.ToUpperInvariant()} {path} documents {success.Count} success answers.");
            Assert.NotEqual(HttpStatusCode.OK.ToString(), Text(success[0].Value!["description"]));
        }
    }

    [Fact]
    public async Task Described_answers_have_the_fields_the_api_really_sends()
    {
        var document = await GetDocumentAsync();
        var schemas = document["components"]!["schemas"]!;
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(
            """{"type": "mysql", "hostname": "db.example.com", "username": "u", "password": "pw-1", "database_name": "d"}""");

        var list = await org.Http.GetAsync("/api/v1/sources/", TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
        var connection = await org.Http.GetAsync($"/api/v1/sources/{id}/", TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
        var updated = await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"port": 3307}""").Expect(HttpStatusCode.OK);
        var revisions = await org.Http.GetAsync($"/api/v1/sources/{id}/revisions/", TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);

        Assert.Equal(PropertyNames(schemas["PaginatedConnectionList"]), Keys(list));
        Assert.Equal(PropertyNames(schemas["Connection"]), Keys(connection));
        Assert.Equal(PropertyNames(schemas["SourceConfigUpdated"]), Keys(updated));
        Assert.Equal(PropertyNames(schemas["PaginatedRevisionList"]), Keys(revisions));
        var revision = revisions["results"]![0]!;
        Assert.Equal(PropertyNames(schemas["Revision"]), Keys(revision));
        Assert.Equal(PropertyNames(schemas["Revision"]!["properties"]!["actor"]), Keys(revision["actor"]!));
    }

    [Fact]
    public async Task Every_sources_operation_accepts_a_bearer_key_or_an_X_API_Key_header()
    {
        var document = await GetDocumentAsync();
        var schemes = document["components"]!["securitySchemes"]!;
        Assert.Equal("http", Text(schemes["BearerAuth"]?["type"]));
        Assert.Equal("bearer", Text(schemes["BearerAuth"]?["scheme"]));
        Assert.Equal("apiKey", Text(schemes["ApiKeyAuth"]?["type"]));
        Assert.Equal("header", Text(schemes["ApiKeyAuth"]?["in"]));
        Assert.Equal("X-API-Key", Text(schemes["ApiKeyAuth"]?["name"]));

        // All but the key set, which is public (TokenDocumentTests).
        foreach (var (path, method, operation) in Operations(document).Where(o => Text(o.Operation["operationId"]) != "getJWKS"))
        {
            var requirements = operation["security"]?.AsArray().SelectMany(r => r!.AsObject().Select(s => s.Key)).ToList() ?? [];
            Assert.True(
                requirements.Contains("BearerAuth") && requirements.Contains("ApiKeyAuth"),
                $"{method.ToUpperInvariant()} {path} does not declare both ways to send a key.");
        }
    }

    [Fact]
    public async Task Create_routes_document_the_Idempotency_Key_and_every_operation_its_429()
    {
        var document = await GetDocumentAsync();
        var creates = SourceTypes.All.Where(t => t.AddRoute is not null).Select(t => $"sources_add_{t.AddRoute}_create").ToHashSet(StringComparer.Ordinal);
        creates.Add("sources_create");
        creates.Add("sources_add_create");

        foreach (var (path, method, operation) in SourcesOperations(document))
        {
            var responses = operation["responses"]!;
            Assert.Equal("#/components/schemas/Detail", Text(responses["429"]?["content"]?["application/json"]?["schema"]?["$ref"]));
            Assert.Equal("integer", Text(responses["429"]?["headers"]?["Retry-After"]?["schema"]?["type"]));

            var isCreate = creates.Contains(Text(operation["operationId"])!);
            var key = operation["parameters"]?.AsArray().SingleOrDefault(p => Text(p?["name"]) == "Idempotency-Key");
            Assert.True(isCreate == key is not null, $"{method.ToUpperInvariant()} {path}: Idempotency-Key should be documented only on creates.");
            // The other 409: a query on a source that is not fully configured.
            Assert.Equal(isCreate || Text(operation["operationId"]) == "sources_query_create", responses["409"] is not null);
            if (isCreate)
            {
                Assert.Equal(("header", 255), (Text(key!["in"]), key["schema"]!["maxLength"]!.GetValue<int>()));
                Assert.NotNull(responses["200"]?["headers"]?["Idempotent-Replayed"]);
            }
        }
    }

    [Fact]
    public async Task Id_and_pagination_parameters_are_described_as_camelAI_does()
    {
        var document = await GetDocumentAsync();
        foreach (var (path, method, operation) in Operations(document).Where(o => o.Path.Contains("{id}", StringComparison.Ordinal)))
        {
            var id = operation["parameters"]?.AsArray().SingleOrDefault(p => Text(p?["name"]) == "id");
            Assert.True(id is not null, $"{method.ToUpperInvariant()} {path} has no id parameter.");
            Assert.Equal("path", Text(id["in"]));
            Assert.Equal("string", Text(id["schema"]?["type"]));
            Assert.Equal("A unique integer value identifying this data source.", Text(id["description"]));
        }

        foreach (var path in new[] { "/api/v1/sources/", "/api/v1/sources/{id}/revisions/" })
        {
            var list = document["paths"]![path]!["get"]!["parameters"]!.AsArray();
            var page = list.Single(p => Text(p?["name"]) == "page")!;
            var pageSize = list.Single(p => Text(p?["name"]) == "page_size")!;
            Assert.Equal(("query", "integer", "A page number within the paginated result set."), (Text(page["in"]), Text(page["schema"]?["type"]), Text(page["description"])));
            Assert.Equal(("query", "integer", "Number of results to return per page."), (Text(pageSize["in"]), Text(pageSize["schema"]?["type"]), Text(pageSize["description"])));
        }
    }

    [Theory]
    [InlineData("/api/docs/")]
    [InlineData("/api/docs")]
    public async Task Docs_page_loads_nothing_from_outside_the_server(string path)
    {
        // The form without a slash is redirected to docs/ (the page loads its scripts by relative
        // URL); the client follows the redirect, as a browser does.
        using var client = app.CreateClient();
        using var response = await client.GetAsync(path, TestContext.Current.CancellationToken);
        var html = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var page = response.RequestMessage!.RequestUri!;
        Assert.EndsWith("/api/docs/", page.AbsolutePath, StringComparison.Ordinal);

        var outside = AbsoluteUrl().Matches(html).Select(m => m.Value).Where(url => !url.StartsWith(client.BaseAddress!.GetLeftPart(UriPartial.Authority), StringComparison.Ordinal));
        Assert.Empty(outside);

        // Whatever the page loads, this server serves.
        var scripts = ScriptSource().Matches(html).Select(m => m.Groups["url"].Value).ToList();
        Assert.NotEmpty(scripts);
        foreach (var script in scripts)
        {
            using var loaded = await client.GetAsync(new Uri(page, script), TestContext.Current.CancellationToken);
            Assert.True(loaded.StatusCode == HttpStatusCode.OK, $"{script} answered {(int)loaded.StatusCode}.");
        }

        // The bundled script fetches fonts from scalar.com unless told otherwise, and reports usage.
        Assert.Contains("\"withDefaultFonts\":false", html, StringComparison.Ordinal);
        Assert.Contains("\"telemetry\":false", html, StringComparison.Ordinal);
        Assert.Contains("\"url\":\"api/schema/\"", html, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/api/docs/", "text/html")]
    [InlineData("/api/docs/v1", "text/html")]
    [InlineData("/api/docs/scalar.js", "text/javascript")]
    [InlineData("/api/docs/scalar.aspnetcore.js", "text/javascript")]
    [InlineData("/api/docs/favicon.svg", "image/svg+xml")]
    public async Task Docs_are_served_with_the_consoles_security_headers_and_a_policy_of_their_own(string path, string mediaType)
    {
        // Issue #12: /api/docs/ had no CSP, no X-Frame-Options or frame-ancestors, no nosniff.
        using var client = app.CreateClient();

        using var response = await client.GetAsync(path, TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(mediaType, response.Content.Headers.ContentType?.MediaType);
        var csp = response.AssertBrowserPageHeaders();
        Assert.Contains("connect-src 'self';", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("*", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("http", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("data:", csp, StringComparison.Ordinal);
        if (mediaType == "text/html")
        {
            // Scripts run from this server, and inline only the page's own, by the nonce of this answer.
            var nonce = Nonce().Match(csp);
            Assert.True(nonce.Success, csp);
            Assert.Contains("script-src 'self' 'nonce-", csp, StringComparison.Ordinal);
            var inline = InlineScript().Matches(body);
            Assert.NotEmpty(inline);
            Assert.All(inline, script => Assert.Equal(nonce.Groups["nonce"].Value, script.Groups["nonce"].Value));
        }
    }

    [Fact]
    public async Task Each_answer_of_the_docs_page_has_a_nonce_of_its_own()
    {
        using var client = app.CreateClient();

        using var first = await client.GetAsync("/api/docs/", TestContext.Current.CancellationToken);
        using var second = await client.GetAsync("/api/docs/", TestContext.Current.CancellationToken);

        var nonces = new[] { first, second }.Select(r => Nonce().Match(string.Join(' ', r.Headers.GetValues("Content-Security-Policy"))).Groups["nonce"].Value).ToList();
        Assert.All(nonces, n => Assert.True(n.Length >= 16, n));
        Assert.NotEqual(nonces[0], nonces[1]);
        Assert.Contains("no-store", first.Headers.CacheControl?.ToString() ?? string.Empty, StringComparison.Ordinal);
    }

    private async Task<JsonNode> GetDocumentAsync()
    {
        using var client = app.CreateClient();
        return await client.GetAsync("/api/schema/", TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
    }

    private static IEnumerable<(string Path, string Method, JsonObject Operation)> Operations(JsonNode document) =>
        document["paths"]!.AsObject().SelectMany(path => path.Value!.AsObject()
            .Select(operation => (path.Key, operation.Key, operation.Value!.AsObject())));

    /// <summary>The operations of the sources API, without the STS routes (their errors have camelAI's STS shape: TokenDocumentTests).</summary>
    private static IEnumerable<(string Path, string Method, JsonObject Operation)> SourcesOperations(JsonNode document) =>
        Operations(document).Where(o => !o.Path.StartsWith("/api/v1/token", StringComparison.Ordinal) && !o.Path.StartsWith("/api/v1/.well-known/", StringComparison.Ordinal));

    private static JsonNode RequestBodySchema(JsonNode document, string path, string method) =>
        document["paths"]?[path]?[method]?["requestBody"]?["content"]?["application/json"]?["schema"]
        ?? throw new InvalidOperationException($"{method.ToUpperInvariant()} {path} has no JSON request body.");

    /// <summary>Follows a <c>$ref</c> to its component; any other schema is returned as is.</summary>
    private static JsonNode Resolve(JsonNode document, JsonNode schema)
    {
        if (Text(schema["$ref"]) is not { } reference)
        {
            return schema;
        }

        const string prefix = "#/components/schemas/";
        Assert.StartsWith(prefix, reference, StringComparison.Ordinal);
        return document["components"]?["schemas"]?[reference[prefix.Length..]]
            ?? throw new InvalidOperationException($"{reference} does not exist.");
    }

    private static List<string> PropertyNames(JsonNode? schema) =>
        [.. schema!["properties"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal)];

    private static List<string> Keys(JsonNode body) => [.. body.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal)];

    private static List<string> Names(JsonNode? array) => array?.AsArray().Select(n => Text(n)!).ToList() ?? [];

    private static bool WriteOnly(JsonNode? schema) => schema?["writeOnly"]?.GetValue<bool>() == true;

    private static string? Text(JsonNode? node) => node?.GetValue<string>();

    [GeneratedRegex(@"https?://[^\s""'<>)]+", RegexOptions.IgnoreCase)]
    private static partial Regex AbsoluteUrl();

    // <script src="..."> and the module imports of the inline script.
    [GeneratedRegex(@"(?:src=""|from ')(?<url>[^""']+)")]
    private static partial Regex ScriptSource();

    [GeneratedRegex(@"'nonce-(?<nonce>[A-Za-z0-9+/_=-]+)'")]
    private static partial Regex Nonce();

    /// <summary>A script element without src, and its nonce attribute (empty when it has none).</summary>
    [GeneratedRegex(@"<script(?![^>]*\bsrc=)(?:[^>]*\bnonce=""(?<nonce>[^""]*)"")?[^>]*>")]
    private static partial Regex InlineScript();
}
