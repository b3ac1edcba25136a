using System.Globalization;
using System.Net;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;

namespace Caravan.Api.Tests.Mcp;

/// <summary>
/// The MCP server at <c>/mcp</c> through the MCP C# client: the tools, each against a real
/// PostgreSQL source (<c>CARAVAN_TEST_POSTGRES</c>), authentication, tenancy and read-only.
/// </summary>
public sealed class McpServerTests(CaravanApp app)
{
    private static readonly string[] ToolNames = ["describe_table", "list_schemas", "list_sources", "run_query"];

    [Fact]
    public async Task The_tools_are_listed_each_with_a_description_and_an_input_schema()
    {
        var org = await app.NewOrganizationAsync();
        await using var client = await McpKit.ConnectAsync(app, org.Key);

        var tools = await client.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(ToolNames, tools.Select(t => t.Name).Order(StringComparer.Ordinal));
        foreach (var tool in tools)
        {
            Assert.True(tool.Description.Length > 200, $"{tool.Name} needs a description an agent can use.");
            Assert.Equal("object", tool.JsonSchema.GetProperty("type").GetString());
            Assert.True(tool.ProtocolTool.Annotations?.ReadOnlyHint, $"{tool.Name} is read-only.");
        }

        var query = tools.Single(t => t.Name == "run_query").JsonSchema;
        Assert.Equal(["source_id", "sql", "max_rows", "timeout_ms", "uid"], query.GetProperty("properties").EnumerateObject().Select(p => p.Name));
        Assert.Equal(["source_id", "sql"], query.GetProperty("required").EnumerateArray().Select(e => e.GetString()));
        var describe = tools.Single(t => t.Name == "describe_table").JsonSchema;
        Assert.Equal(["source_id", "schema", "table"], describe.GetProperty("required").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Every_tool_works_against_a_real_PostgreSQL_source()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync(schemaCount: 1);
        var schema = db.Schemas[0];
        await db.AdminAsync($"""
            CREATE TABLE {schema}.orders (id integer PRIMARY KEY, customer text NOT NULL, amount numeric(10,2), placed_at timestamptz);
            INSERT INTO {schema}.orders VALUES (1, 'ada', 12.50, '2026-01-02 03:04:05+00'), (2, 'grace', NULL, NULL), (3, 'alan', 7.25, '2026-02-03 00:00:00+00');
            GRANT SELECT ON {schema}.orders TO {db.Role};
            """);
        var org = await app.NewOrganizationAsync();
        var discovered = await org.Http.CreateSourceAsync(db.Body());
        var selected = await org.Http.CreateSourceAsync(db.Body(b => { b["account_name"] = "Selected"; b["selected_schemas"] = new System.Text.Json.Nodes.JsonArray(schema); }));
        await using var client = await McpKit.ConnectAsync(app, org.Key, asApiKeyHeader: true);

        var listed = (await client.CallAsync("list_sources")).Ok();
        Assert.Equal(2, listed.GetProperty("count").GetInt32());
        Assert.False(listed.GetProperty("truncated").GetBoolean());
        var first = listed.GetProperty("sources")[0];
        Assert.Equal(discovered, first.GetProperty("id").GetInt64());
        Assert.Equal("Scratch " + db.Database, first.GetProperty("name").GetString());
        Assert.Equal("POSTGRES", first.GetProperty("type").GetString());
        Assert.True(first.GetProperty("configured").GetBoolean());
        Assert.True(first.GetProperty("supports_sql").GetBoolean());
        Assert.False(first.TryGetProperty("selected_schemas", out _));
        var second = listed.GetProperty("sources")[1];
        Assert.Equal(selected, second.GetProperty("id").GetInt64());
        Assert.Equal([schema], second.GetProperty("selected_schemas").EnumerateArray().Select(e => e.GetString()));
        Assert.DoesNotContain(db.Password, McpKit.Text(await client.CallAsync("list_sources")), StringComparison.Ordinal);

        var found = (await client.CallAsync("list_schemas", new() { ["source_id"] = discovered })).Ok();
        Assert.Equal("discovery", found.GetProperty("origin").GetString());
        Assert.Equal("schemas", found.GetProperty("kind").GetString());
        Assert.Contains(schema, found.GetProperty("schemas").EnumerateArray().Select(e => e.GetString()));
        var chosen = (await client.CallAsync("list_schemas", new() { ["source_id"] = selected })).Ok();
        Assert.Equal("selection", chosen.GetProperty("origin").GetString());
        Assert.Equal([schema], chosen.GetProperty("schemas").EnumerateArray().Select(e => e.GetString()));

        var described = (await client.CallAsync("describe_table", new() { ["source_id"] = discovered, ["schema"] = schema, ["table"] = "orders" })).Ok();
        Assert.Equal(
            ["id integer False", "customer text False", "amount numeric(10,2) True", "placed_at timestamp with time zone True"],
            described.GetProperty("columns").EnumerateArray().Select(c =>
                $"{c.GetProperty("name").GetString()} {c.GetProperty("type").GetString()} {c.GetProperty("nullable").GetBoolean()}"));
        var (code, message) = (await client.CallAsync("describe_table", new() { ["source_id"] = discovered, ["schema"] = schema, ["table"] = "nope'; DROP TABLE orders; --" })).Error();
        Assert.Equal("not_found", code);
        Assert.Contains("no table or view named", message, StringComparison.Ordinal);
        Assert.Equal(3, await db.CountAsync($"{schema}.orders"));

        var result = (await client.CallAsync("run_query", new() { ["source_id"] = discovered, ["sql"] = $"SELECT id, customer, amount, placed_at FROM {schema}.orders ORDER BY id;" })).Ok();
        Assert.Equal(["id", "customer", "amount", "placed_at"], result.GetProperty("columns").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
        Assert.Equal(
            """[[1,"ada",12.50,"2026-01-02T03:04:05Z"],[2,"grace",null,null],[3,"alan",7.25,"2026-02-03T00:00:00Z"]]""",
            result.GetProperty("rows").GetRawText());
        Assert.Equal(3, result.GetProperty("row_count").GetInt64());
        Assert.False(result.GetProperty("truncated").GetBoolean());

        var cut = await client.CallAsync("run_query", new() { ["source_id"] = discovered, ["sql"] = $"SELECT id FROM {schema}.orders ORDER BY id", ["max_rows"] = 2 });
        Assert.True(cut.Ok().GetProperty("truncated").GetBoolean());
        Assert.Equal(2, cut.Ok().GetProperty("rows").GetArrayLength());
        Assert.Contains("truncated after 2 rows", McpKit.Text(cut), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("DELETE FROM {0}.orders")]
    [InlineData("UPDATE {0}.orders SET customer = 'x'")]
    [InlineData("CREATE TABLE {0}.other (x int)")]
    public async Task A_write_through_run_query_is_refused_and_changes_nothing(string statement)
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync(schemaCount: 1);
        var schema = db.Schemas[0];
        await db.AdminAsync($"""
            CREATE TABLE {schema}.orders (id integer, customer text);
            INSERT INTO {schema}.orders VALUES (1, 'ada'), (2, 'grace');
            GRANT ALL ON {schema}.orders TO {db.Role};
            GRANT ALL ON SCHEMA {schema} TO {db.Role};
            """);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        await using var client = await McpKit.ConnectAsync(app, org.Key);

        var (code, message) = (await client.CallAsync("run_query", new()
        {
            ["source_id"] = id,
            ["sql"] = string.Format(CultureInfo.InvariantCulture, statement, schema),
        })).Error();

        Assert.Equal("write_refused", code);
        Assert.StartsWith("Refused, nothing was changed: queries are read-only.", message, StringComparison.Ordinal);
        Assert.Equal(2, await db.CountAsync($"{schema}.orders"));
        Assert.DoesNotContain(db.Password, message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Another_organizations_source_is_not_found_exactly_like_a_missing_id()
    {
        var owner = await app.NewOrganizationAsync();
        var theirs = await owner.Http.CreateSourceAsync("""
            {"type": "postgres", "hostname": "db.invalid", "username": "u", "password": "owner-secret-1234", "database_name": "d"}
            """);
        var org = await app.NewOrganizationAsync();
        await using var client = await McpKit.ConnectAsync(app, org.Key);

        var missing = theirs + 1_000_000;
        foreach (var (tool, extra) in new (string, Dictionary<string, object?>)[]
        {
            ("list_schemas", []),
            ("describe_table", new() { ["schema"] = "public", ["table"] = "t" }),
            ("run_query", new() { ["sql"] = "SELECT 1" }),
        })
        {
            var (code, message) = (await client.CallAsync(tool, new(extra) { ["source_id"] = theirs })).Error();
            var (missingCode, missingMessage) = (await client.CallAsync(tool, new(extra) { ["source_id"] = missing })).Error();
            Assert.Equal("not_found", code);
            Assert.Equal(missingCode, code);
            Assert.Equal(
                missingMessage.Replace(missing.ToString(CultureInfo.InvariantCulture), "{id}", StringComparison.Ordinal),
                message.Replace(theirs.ToString(CultureInfo.InvariantCulture), "{id}", StringComparison.Ordinal));
            Assert.Equal($"Not found: there is no source with id {theirs} in your organization. Call list_sources for the ids you can use.", message);
        }

        Assert.Equal(0, (await client.CallAsync("list_sources")).Ok().GetProperty("count").GetInt32());

        // Neither the uid nor the statement reaches the log, at any level.
        var marker = Unique.Secret("uid-");
        (await client.CallAsync("run_query", new() { ["source_id"] = missing, ["sql"] = $"SELECT '{marker}'", ["uid"] = marker })).Error();
        Assert.DoesNotContain(app.Logs.Lines, l => l.Contains(marker, StringComparison.Ordinal));
        Assert.DoesNotContain(app.Logs.Lines, l => l.Contains("owner-secret-1234", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_a_key_or_with_a_bad_one_the_answer_is_401_with_the_contracts_bodies()
    {
        using var http = app.CreateClient();

        using var none = await http.SendAsync(Initialize(), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Equal("Bearer", none.Headers.WwwAuthenticate.ToString());
        Assert.Equal("""{"detail":"Authentication credentials were not provided."}""", await none.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));

        foreach (var (header, value) in new[] { ("Authorization", "Bearer cvn_not_a_real_key"), ("X-API-Key", "cvn_not_a_real_key"), ("Authorization", "Basic dXNlcjpwYXNz") })
        {
            using var request = Initialize();
            request.Headers.TryAddWithoutValidation(header, value);
            using var bad = await http.SendAsync(request, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.Unauthorized, bad.StatusCode);
            Assert.Equal("Bearer", bad.Headers.WwwAuthenticate.ToString());
            Assert.Equal("""{"detail":"Invalid API key."}""", await bad.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        }

        await Assert.ThrowsAnyAsync<Exception>(() => McpKit.ConnectAsync(app, "cvn_not_a_real_key"));
    }

    [Fact]
    public async Task A_raw_initialize_with_a_key_is_answered()
    {
        var org = await app.NewOrganizationAsync();
        using var http = app.CreateClient();
        using var request = Initialize();
        request.Headers.TryAddWithoutValidation("X-API-Key", org.Key);

        using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"caravan\"", await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
        Assert.False(response.Headers.Contains("Mcp-Session-Id"));

        // The path with a trailing slash works too; stateless, there is no GET stream.
        using var slashed = Initialize();
        slashed.RequestUri = new Uri("/mcp/", UriKind.Relative);
        slashed.Headers.TryAddWithoutValidation("X-API-Key", org.Key);
        using var answered = await http.SendAsync(slashed, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        using var stream = new HttpRequestMessage(HttpMethod.Get, "/mcp");
        stream.Headers.TryAddWithoutValidation("X-API-Key", org.Key);
        stream.Headers.Accept.ParseAdd("text/event-stream");
        using var refused = await http.SendAsync(stream, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, refused.StatusCode);
    }

    [Fact]
    public async Task Database_tool_calls_are_throttled_with_an_error_result_and_other_requests_with_429()
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?>
        {
            [CaravanApp.RateLimitsEnabled] = "true",
            ["Caravan:RateLimits:TestsPerMinute"] = "2",
            ["Caravan:RateLimits:RequestsPerMinute"] = "4",
        });
        var org = await own.NewOrganizationAsync();
        using var http = own.CreateClient();
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", org.Key);

        // Through the client: two database tool calls pass (not found), the third is throttled.
        await using var client = await McpKit.ConnectAsync(own, org.Key);
        Assert.Equal("not_found", (await client.CallAsync("list_schemas", new() { ["source_id"] = 999_999 })).Error().Code);
        Assert.Equal("not_found", (await client.CallAsync("run_query", new() { ["source_id"] = 999_999, ["sql"] = "SELECT 1" })).Error().Code);
        var (code, message) = (await client.CallAsync("describe_table", new() { ["source_id"] = 999_999, ["schema"] = "s", ["table"] = "t" })).Error();
        Assert.Equal("throttled", code);
        Assert.Matches(@"Retry in \d+ s; nothing was run\.$", message);

        // A fresh key, by raw requests: database tool calls never take from RequestsPerMinute (4),
        // and a refused (throttled) one takes from nothing.
        var fresh = await own.NewOrganizationAsync();
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", fresh.Key);
        for (var i = 0; i < 5; i++)
        {
            using var call = await http.SendAsync(ToolCall("run_query", """{"source_id": 999999, "sql": "SELECT 1"}"""), TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, call.StatusCode);
            Assert.Contains(i < 2 ? "not_found" : "throttled", await call.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
        }

        for (var i = 0; i < 4; i++)
        {
            using var accepted = await http.SendAsync(Initialize(), TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        }

        using var throttled = await http.SendAsync(Initialize(), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        Assert.True(int.Parse(throttled.Headers.GetValues("Retry-After").Single(), CultureInfo.InvariantCulture) >= 1);
        Assert.Equal("""{"detail":"Request was throttled."}""", await throttled.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    private static HttpRequestMessage ToolCall(string tool, string arguments) => Message($$$"""
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "{{{tool}}}", "arguments": {{{arguments}}}}}
        """);

    private static HttpRequestMessage Initialize() => Message("""
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}
        """);

    private static HttpRequestMessage Message(string json) => McpKit.Message(json);
}
