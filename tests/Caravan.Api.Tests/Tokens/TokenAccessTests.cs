using System.Globalization;
using System.Net;
using Caravan.Api.Auth;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;
using Caravan.Api.Tests.Sources;
using Caravan.Api.Tokens;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Tokens;

/// <summary>
/// What a token may do (contract section 9.1): its sources and nothing else (others are 404, as if
/// they did not exist), the routes that declare themselves open to its scope and nothing else (403,
/// nothing changed), and it dies with the key that minted it.
/// </summary>
public sealed class TokenAccessTests(CaravanApp app)
{
    private const string MySql = """{"type": "mysql", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""";

    // Unreachable at once: discovery and queries fail fast, without leaving the machine.
    private const string ClosedPort = """{"type": "postgres", "hostname": "127.0.0.1", "port": 9, "username": "u", "password": "p", "database_name": "d"}""";

    [Fact]
    public async Task A_token_for_source_A_lists_and_reads_A_only_and_B_and_another_orgs_source_are_not_found()
    {
        var org = await app.NewOrganizationAsync();
        var other = await app.NewOrganizationAsync();
        var a = await org.Http.CreateSourceAsync(ClosedPort);
        var b = await org.Http.CreateSourceAsync(MySql);
        var theirs = await other.Http.CreateSourceAsync(MySql);
        using var token = app.TokenClient(await org.MintAsync($$"""{"uid": "alice", "srcs": ["{{a}}"]}"""));

        var list = await token.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
        Assert.Equal(1, list["count"]!.GetValue<long>());
        Assert.Equal([a], list["results"]!.AsArray().Select(r => r!["id"]!.GetValue<long>()));
        var searched = await token.GetAsync(new Uri("/api/v1/sources/?search=sql&include=last_test", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
        Assert.Equal(1, searched["count"]!.GetValue<long>());
        Assert.Equal([a], searched["results"]!.AsArray().Select(r => r!["id"]!.GetValue<long>()));
        (await token.GetRawAsync("/api/v1/sources/?page=2&page_size=1")).AssertExactly(HttpStatusCode.NotFound, Wire.InvalidPage);

        var read = await token.GetRawAsync($"/api/v1/sources/{a}/");
        Assert.Equal((await org.Http.GetRawAsync($"/api/v1/sources/{a}/")).Body, read.Body);
        var schemas = await token.GetRawAsync($"/api/v1/sources/{a}/schemas/");
        Assert.Equal(HttpStatusCode.BadGateway, schemas.Status);

        foreach (var hidden in new[] { b, theirs, theirs + 1_000_000 })
        {
            (await token.GetRawAsync($"/api/v1/sources/{hidden}/")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
            (await token.GetRawAsync($"/api/v1/sources/{hidden}/schemas/")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
            (await token.SendAsync("POST", $"/api/v1/sources/{hidden}/query/", """{"sql": "SELECT 1"}""")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        }
    }

    [Fact]
    public async Task A_token_without_srcs_sees_every_source_of_its_organization_at_the_time_of_each_request()
    {
        var org = await app.NewOrganizationAsync();
        var other = await app.NewOrganizationAsync();
        await org.Http.CreateSourceAsync(MySql);
        var theirs = await other.Http.CreateSourceAsync(MySql);
        using var token = app.TokenClient(await org.MintAsync("""{"uid": "alice"}"""));
        Assert.Equal(1, (await token.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK))["count"]!.GetValue<long>());

        var later = await org.Http.CreateSourceAsync(MySql);

        var list = await token.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
        Assert.Equal(2, list["count"]!.GetValue<long>());
        (await token.GetRawAsync($"/api/v1/sources/{later}/")).AssertStatus(HttpStatusCode.OK);
        (await token.GetRawAsync($"/api/v1/sources/{theirs}/")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
    }

    [Theory]
    [InlineData("read")]
    [InlineData("query")]
    public async Task Every_route_not_open_to_the_tokens_scope_answers_403_and_changes_nothing(string scope)
    {
        var org = await app.NewOrganizationAsync();
        var a = await org.Http.CreateSourceAsync(MySql);
        var b = await org.Http.CreateSourceAsync(MySql);
        var beforeA = await app.StoredSourceAsync(a);
        var beforeB = await app.StoredSourceAsync(b);
        using var token = app.TokenClient(await org.MintAsync($$"""{"uid": "alice", "srcs": ["{{a}}"], "scopes": ["{{scope}}"]}"""));
        using var anonymous = app.CreateClient();
        var granted = scope == "query" ? TokenScope.Query : TokenScope.Read;

        // Every route the app maps, as the router knows them: a route added later is covered too.
        var checkedRoutes = new List<string>();
        foreach (var (method, pattern, access) in Routes())
        {
            var url = pattern.Replace("{id}", a.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
            var body = method is "POST" or "PUT" or "PATCH"
                ? """{"account_name": "hijacked", "type": "mysql", "hostname": "evil.example.com", "username": "u", "password": "p", "database_name": "d", "uid": "x", "sql": "SELECT 1"}"""
                : null;

            // Routes that ask no credentials of anyone (the key set, the router's 405s) are not the token's business.
            if ((await anonymous.SendAsync(method, url, body)).Status != HttpStatusCode.Unauthorized || (access is not null && access.Scope <= granted))
            {
                continue;
            }

            var answer = await token.SendAsync(method, url, body);

            answer.AssertExactly(
                HttpStatusCode.Forbidden,
                pattern.StartsWith(TokenKit.MintUrl, StringComparison.Ordinal) ? """{"error":"This token does not allow this action."}""" : TokenKit.NotAllowed);
            checkedRoutes.Add($"{method} {pattern}");
        }

        Assert.Contains("POST /api/v1/sources/", checkedRoutes);
        Assert.Contains("PUT /api/v1/sources/{id}/", checkedRoutes);
        Assert.Contains("PATCH /api/v1/sources/{id}/", checkedRoutes);
        Assert.Contains("DELETE /api/v1/sources/{id}/", checkedRoutes);
        Assert.Contains("PATCH /api/v1/sources/{id}/update-config/", checkedRoutes);
        Assert.Contains("GET /api/v1/sources/{id}/config/", checkedRoutes);
        Assert.Contains("POST /api/v1/token/", checkedRoutes);
        Assert.Equal(scope == "read", checkedRoutes.Contains("POST /api/v1/sources/{id}/query/"));
        Assert.Equal(beforeA, await app.StoredSourceAsync(a));
        Assert.Equal(beforeB, await app.StoredSourceAsync(b));
        Assert.Equal(2, await org.CountAsync());
        var revisions = await org.Http.GetAsync(new Uri($"/api/v1/sources/{a}/revisions/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
        Assert.Equal(1, revisions["count"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_uid_in_the_query_body_that_differs_from_the_tokens_is_400_on_uid()
    {
        var org = await app.NewOrganizationAsync();
        var a = await org.Http.CreateSourceAsync(ClosedPort);
        using var token = app.TokenClient(await org.MintAsync($$"""{"uid": "alice", "srcs": ["{{a}}"]}"""));

        var answer = await token.SendAsync("POST", $"/api/v1/sources/{a}/query/", """{"sql": "SELECT 1", "uid": "bob"}""");

        answer.AssertExactly(HttpStatusCode.BadRequest,
            """{"error":"Invalid value for uid.","errors":{"uid":["This token is for another uid: leave uid out (the token's uid is used) or send the token's."]}}""");

        // The token's own uid, or none, goes on to the database (which is not there: 502).
        (await token.SendAsync("POST", $"/api/v1/sources/{a}/query/", """{"sql": "SELECT 1", "uid": "alice"}""")).AssertStatus(HttpStatusCode.BadGateway);
        (await token.SendAsync("POST", $"/api/v1/sources/{a}/query/", """{"sql": "SELECT 1"}""")).AssertStatus(HttpStatusCode.BadGateway);
    }

    [Fact]
    public async Task A_token_dies_with_the_key_that_minted_it_on_the_next_request_of_every_route()
    {
        var org = await app.NewOrganizationAsync();
        var a = await org.Http.CreateSourceAsync(ClosedPort);
        var token = await org.MintAsync($$"""{"uid": "alice", "srcs": ["{{a}}"]}""");
        using var carrier = app.TokenClient(token);
        (await carrier.GetRawAsync($"/api/v1/sources/{a}/")).AssertStatus(HttpStatusCode.OK);
        (await carrier.GetRawAsync("/api/v1/sources/")).AssertStatus(HttpStatusCode.OK);

        Assert.True(await app.Services.GetRequiredService<ApiKeys>().RevokeAsync(org.KeyId, TestContext.Current.CancellationToken));

        foreach (var (method, url, body) in new[]
        {
            ("GET", $"/api/v1/sources/{a}/", (string?)null),
            ("GET", "/api/v1/sources/", null),
            ("GET", $"/api/v1/sources/{a}/schemas/", null),
            ("POST", $"/api/v1/sources/{a}/query/", """{"sql": "SELECT 1"}"""),
            ("DELETE", $"/api/v1/sources/{a}/", null),
            ("GET", $"/api/v1/sources/{a + 1_000_000}/", null),
        })
        {
            var answer = await carrier.SendAsync(method, url, body);
            answer.AssertExactly(HttpStatusCode.Unauthorized, TokenKit.InvalidToken);
            Assert.Equal("Bearer", answer.WwwAuthenticate);
        }

        (await carrier.SendAsync("POST", TokenKit.MintUrl, """{"uid": "u"}""")).AssertExactly(HttpStatusCode.Unauthorized, """{"error":"Invalid token."}""");
        await Assert.ThrowsAnyAsync<Exception>(() => McpKit.ConnectAsync(app, token));
    }

    [Fact]
    public async Task At_mcp_a_token_sees_its_sources_only_and_a_read_token_cannot_run_queries()
    {
        var org = await app.NewOrganizationAsync();
        var a = await org.Http.CreateSourceAsync(ClosedPort);
        var b = await org.Http.CreateSourceAsync(ClosedPort);
        await using var query = await McpKit.ConnectAsync(app, await org.MintAsync($$"""{"uid": "alice", "srcs": ["{{a}}"]}"""));
        await using var read = await McpKit.ConnectAsync(app, await org.MintAsync($$"""{"uid": "alice", "srcs": ["{{a}}"], "scopes": ["read"]}"""));

        var tools = await query.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(["describe_table", "list_schemas", "list_sources", "run_query"], tools.Select(t => t.Name).Order(StringComparer.Ordinal));
        var readTools = await read.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(["describe_table", "list_schemas", "list_sources"], readTools.Select(t => t.Name).Order(StringComparer.Ordinal));

        foreach (var client in new[] { query, read })
        {
            var listed = (await client.CallAsync("list_sources")).Ok();
            Assert.Equal(1, listed.GetProperty("count").GetInt32());
            Assert.Equal(a, listed.GetProperty("sources")[0].GetProperty("id").GetInt64());
            foreach (var (tool, extra) in new (string, Dictionary<string, object?>)[]
            {
                ("list_schemas", []),
                ("describe_table", new() { ["schema"] = "public", ["table"] = "t" }),
            })
            {
                var (code, message) = (await client.CallAsync(tool, new(extra) { ["source_id"] = b })).Error();
                Assert.Equal(("not_found", $"Not found: there is no source with id {b} in your organization. Call list_sources for the ids you can use."), (code, message));
                Assert.NotEqual("not_found", (await client.CallAsync(tool, new(extra) { ["source_id"] = a })).Error().Code);
            }
        }

        Assert.Equal("not_found", (await query.CallAsync("run_query", new() { ["source_id"] = b, ["sql"] = "SELECT 1" })).Error().Code);
        Assert.Equal("invalid", (await query.CallAsync("run_query", new() { ["source_id"] = a, ["sql"] = "SELECT 1", ["uid"] = "bob" })).Error().Code);
        var (refused, why) = (await read.CallAsync("run_query", new() { ["source_id"] = a, ["sql"] = "SELECT 1" })).Error();
        Assert.Equal("forbidden", refused);
        Assert.Equal("This token does not allow this action. run_query needs a token with scope \"query\" or an API key; nothing was run.", why);
    }

    [Fact]
    public async Task No_log_line_holds_a_token_or_its_signature()
    {
        var org = await app.NewOrganizationAsync();
        var a = await org.Http.CreateSourceAsync(ClosedPort);
        var token = await org.MintAsync($$"""{"uid": "log-watcher", "srcs": ["{{a}}"]}""");
        using var good = app.TokenClient(token);
        using var bad = app.TokenClient(token[..^4] + "AAAA");

        await good.GetRawAsync($"/api/v1/sources/{a}/");
        await good.SendAsync("POST", $"/api/v1/sources/{a}/query/", """{"sql": "SELECT 1"}""");
        await good.SendAsync("DELETE", $"/api/v1/sources/{a}/");
        await bad.GetRawAsync("/api/v1/sources/");

        var signature = token.Split('.')[2];
        Assert.DoesNotContain(app.Logs.Lines, l => l.Contains(signature[..16], StringComparison.Ordinal) || l.Contains(token.Split('.')[1][..24], StringComparison.Ordinal));
    }

    /// <summary>Every route of the API as (method, pattern, what it allows tokens).</summary>
    private IEnumerable<(string Method, string Pattern, AllowTokensAttribute? Access)> Routes() =>
        app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText is { } text && (text.StartsWith("/api/v1/", StringComparison.Ordinal) || text.StartsWith("/mcp", StringComparison.Ordinal)))
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? []).Select(m =>
                (m, e.RoutePattern.RawText!.EndsWith('/') ? e.RoutePattern.RawText! : e.RoutePattern.RawText + "/", e.Metadata.GetMetadata<AllowTokensAttribute>())));
}
