using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Tokens;

namespace Caravan.Api.Tests.Mcp;

/// <summary>
/// MCP sources (contract 9.3) against a real MCP server on loopback (<see cref="RemoteMcpServer"/>),
/// over Streamable HTTP and over SSE only: create, test, discovery, and the remote's selected tools
/// at Caravan's own <c>/mcp</c> through the MCP C# client, with the stored token added by Caravan.
/// </summary>
public sealed class McpSourceTests(CaravanApp app)
{
    public static TheoryData<bool> Transports() => [false, true];

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_remote_server_is_tested_discovered_and_only_its_selected_tools_are_offered_and_forwarded(bool sseOnly)
    {
        var token = Unique.Secret("mcp-token-");
        await using var remote = await RemoteMcpServer.StartAsync(token, sseOnly);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body(remote.BaseUrl, token, "echo", "add"));

        var source = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal("MCP", source["type"]!.GetValue<string>());
        Assert.Equal("MCP server", source["account_name"]!.GetValue<string>());
        Assert.True(source["is_fully_configured"]!.GetValue<bool>());

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK);
        Assert.True(report["ok"]!.GetValue<bool>(), report.ToJsonString());
        Assert.Equal(["resolve", "egress", "connect", "tls", "initialize", "tools/list"], Steps(report).Select(s => s.Name));
        Assert.Equal("skipped", Steps(report).Single(s => s.Name == "tls").Status);
        var initialize = Steps(report).Single(s => s.Name == "initialize").Message!;
        Assert.Contains(RemoteMcpServer.ServerName, initialize, StringComparison.Ordinal);
        Assert.Contains(RemoteMcpServer.ServerVersion, initialize, StringComparison.Ordinal);
        Assert.StartsWith("3 tools", Steps(report).Single(s => s.Name == "tools/list").Message!, StringComparison.Ordinal);

        var discovery = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal("tools", discovery["kind"]!.GetValue<string>());
        var tools = discovery["results"]!.AsArray().ToDictionary(t => t!["name"]!.GetValue<string>(), t => t!);
        Assert.Equal(["add", "echo", "wipe"], tools.Keys.Order(StringComparer.Ordinal));
        Assert.True(tools["echo"]["selected"]!.GetValue<bool>());
        Assert.True(tools["add"]["selected"]!.GetValue<bool>());
        Assert.False(tools["wipe"]["selected"]!.GetValue<bool>());
        Assert.Equal("Repeats the text it is given.", tools["echo"]["description"]!.GetValue<string>());
        Assert.Equal("string", tools["echo"]["input_schema"]!["properties"]!["text"]!["type"]!.GetValue<string>());
        Assert.Equal(["a", "b"], tools["add"]["input_schema"]!["required"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal));

        await using var agent = await McpKit.ConnectAsync(app, org.Key);
        var offered = await agent.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken);
        var prefix = id.ToString(CultureInfo.InvariantCulture) + "__";
        Assert.Equal([prefix + "add", prefix + "echo"], offered.Select(t => t.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        Assert.Contains("list_sources", offered.Select(t => t.Name));
        var echo = offered.Single(t => t.Name == prefix + "echo");
        Assert.StartsWith("Repeats the text it is given.", echo.Description, StringComparison.Ordinal);
        Assert.Equal("string", echo.JsonSchema.GetProperty("properties").GetProperty("text").GetProperty("type").GetString());

        var authorizationsBefore = remote.Authorizations.Count;
        var answer = await agent.CallAsync(prefix + "echo", new() { ["text"] = "hello" });
        Assert.True(answer.IsError is not true, McpKit.Text(answer));
        Assert.Equal("echo: hello", McpKit.Text(answer));
        Assert.Equal("5", McpKit.Text(await agent.CallAsync(prefix + "add", new() { ["a"] = 2, ["b"] = 3 })));
        Assert.All(remote.Authorizations.Skip(authorizationsBefore), a => Assert.Equal("Bearer " + token, a));

        var wipe = await agent.CallAsync(prefix + "wipe");
        Assert.Equal("not_found", wipe.Error().Code);
        Assert.DoesNotContain("wipe", remote.Calls);
        Assert.Equal(["echo", "add"], remote.Calls);
        if (sseOnly)
        {
            Assert.True(remote.RefusedStreamablePosts > 0, "The client tried Streamable HTTP first.");
        }

        Assert.Contains(app.Logs.Lines, l => l.Contains($"Remote tool echo succeeded on source {id} by organization", StringComparison.Ordinal));
        Assert.Contains(app.Logs.Lines, l => l.Contains($"Remote tool wipe refused on source {id}", StringComparison.Ordinal));
        Assert.DoesNotContain(app.Logs.Lines, l => l.Contains(token, StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_wrong_token_fails_the_test_at_initialize_with_auth_failed_and_its_tools_are_not_offered(bool sseOnly)
    {
        await using var remote = await RemoteMcpServer.StartAsync(Unique.Secret("right-"), sseOnly);
        var org = await app.NewOrganizationAsync();
        var wrong = Unique.Secret("wrong-");
        var id = await org.Http.CreateSourceAsync(Body(remote.BaseUrl, wrong));

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK);
        Assert.False(report["ok"]!.GetValue<bool>());
        var failed = Steps(report).Single(s => s.Status == "failed");
        Assert.Equal(("initialize", "auth_failed"), (failed.Name, failed.Code));
        Assert.Equal("skipped", Steps(report).Single(s => s.Name == "tools/list").Status);
        Assert.DoesNotContain(wrong, report.ToJsonString(), StringComparison.Ordinal);

        var unsaved = await org.Http.PostJsonAsync("/api/v1/sources/test/", Body(remote.BaseUrl, wrong)).Expect(HttpStatusCode.OK);
        Assert.Equal("auth_failed", Steps(unsaved).Single(s => s.Status == "failed").Code);

        var discovery = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.BadGateway);
        Assert.Equal("auth_failed", discovery["code"]!.GetValue<string>());

        await using var agent = await McpKit.ConnectAsync(app, org.Key);
        var offered = await agent.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken);
        Assert.DoesNotContain(offered, t => t.Name.StartsWith(id.ToString(CultureInfo.InvariantCulture) + "__", StringComparison.Ordinal));
        var call = await agent.CallAsync($"{id}__echo", new() { ["text"] = "x" });
        Assert.Equal("auth_failed", call.Error().Code);
        Assert.Empty(remote.Calls);
    }

    [Fact]
    public async Task Another_organization_and_a_token_whose_srcs_leave_the_source_out_see_and_call_none_of_its_tools()
    {
        var token = Unique.Secret("mcp-token-");
        await using var remote = await RemoteMcpServer.StartAsync(token);
        var owner = await app.NewOrganizationAsync();
        var id = await owner.Http.CreateSourceAsync(Body(remote.BaseUrl, token));
        var other = await owner.Http.CreateSourceAsync("""{"type": "MOTHERDUCK", "database_name": "d", "token": "t-123456"}""");
        var prefix = id.ToString(CultureInfo.InvariantCulture) + "__";

        var stranger = await app.NewOrganizationAsync();
        await using (var agent = await McpKit.ConnectAsync(app, stranger.Key))
        {
            Assert.DoesNotContain((await agent.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken)).Select(t => t.Name), n => n.StartsWith(prefix, StringComparison.Ordinal));
            Assert.Equal("not_found", (await agent.CallAsync(prefix + "echo", new() { ["text"] = "x" })).Error().Code);
        }

        var outside = await owner.MintAsync($$"""{"uid": "alice", "srcs": ["{{other}}"]}""");
        await using (var agent = await McpKit.ConnectAsync(app, outside))
        {
            Assert.DoesNotContain((await agent.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken)).Select(t => t.Name), n => n.StartsWith(prefix, StringComparison.Ordinal));
            Assert.Equal("not_found", (await agent.CallAsync(prefix + "echo", new() { ["text"] = "x" })).Error().Code);
        }

        Assert.Empty(remote.Calls);

        // A token that names the source sees its tools; a read-scoped one only those marked read-only.
        var inside = await owner.MintAsync($$"""{"uid": "alice", "srcs": ["{{id}}"]}""");
        await using (var agent = await McpKit.ConnectAsync(app, inside))
        {
            Assert.Equal([prefix + "add", prefix + "echo", prefix + "wipe"],
                (await agent.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken)).Select(t => t.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal));
            Assert.Equal("echo: via token", McpKit.Text(await agent.CallAsync(prefix + "echo", new() { ["text"] = "via token" })));
        }

        var reader = await owner.MintAsync($$"""{"uid": "alice", "srcs": ["{{id}}"], "scopes": ["read"]}""");
        await using (var agent = await McpKit.ConnectAsync(app, reader))
        {
            Assert.Equal([prefix + "add", prefix + "echo"],
                (await agent.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken)).Select(t => t.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal));
            Assert.Equal("forbidden", (await agent.CallAsync(prefix + "wipe")).Error().Code);
        }

        Assert.Equal(["echo"], remote.Calls);
    }

    [Fact]
    public async Task A_new_access_token_is_used_by_the_next_call_and_moving_to_another_host_needs_it_again()
    {
        var first = Unique.Secret("first-");
        await using var remote = await RemoteMcpServer.StartAsync(first);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body(remote.BaseUrl, first));
        await using var agent = await McpKit.ConnectAsync(app, org.Key);
        Assert.Equal("echo: one", McpKit.Text(await agent.CallAsync($"{id}__echo", new() { ["text"] = "one" })));

        var second = Unique.Secret("second-");
        remote.Token = second;
        await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), new JsonObject { ["access_token"] = second }.ToJsonString()).Expect(HttpStatusCode.OK);
        var seen = remote.Authorizations.Count;
        Assert.Equal("echo: two", McpKit.Text(await agent.CallAsync($"{id}__echo", new() { ["text"] = "two" })));
        Assert.All(remote.Authorizations.Skip(seen), a => Assert.Equal("Bearer " + second, a));

        // Another host (localhost is not 127.0.0.1) keeping the stored token: refused, nothing changed.
        var elsewhere = remote.BaseUrl.Replace("127.0.0.1", "localhost", StringComparison.Ordinal);
        var refused = await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), new JsonObject { ["base_url"] = elsewhere }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);
        Assert.Equal(["Changing base_url requires sending access_token again."], refused["errors"]!["access_token"]!.AsArray().Select(m => m!.GetValue<string>()));
        var config = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(remote.BaseUrl, config["config"]!["base_url"]!.GetValue<string>());

        // Another path or port on the same host moves nothing; sending the token again allows a move.
        await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), new JsonObject { ["base_url"] = remote.BaseUrl + "/" }.ToJsonString()).Expect(HttpStatusCode.OK);
        await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), new JsonObject { ["base_url"] = elsewhere, ["access_token"] = second }.ToJsonString())
            .Expect(HttpStatusCode.OK);
        var revisions = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "revisions"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(["base_url", "base_url", "access_token", "account_name,base_url,access_token"],
            revisions["results"]!.AsArray().Select(r => string.Join(",", r!["changes"]!.AsObject().Select(c => c.Key))));
        Assert.Equal("changed", revisions["results"]![2]!["changes"]!["access_token"]!.GetValue<string>());
        Assert.Equal("set", revisions["results"]![3]!["changes"]!["access_token"]!.GetValue<string>());
        Assert.DoesNotContain(second, revisions.ToJsonString(), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task A_hanging_remote_is_cut_at_the_time_limit_and_a_huge_answer_at_the_size_limit_and_neither_blocks_other_calls(bool sseOnly)
    {
        var token = Unique.Secret("mcp-token-");
        await using var remote = await RemoteMcpServer.StartAsync(token, sseOnly, withLimits: true);
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Mcp:RemoteCallTimeoutSeconds"] = "10" });
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body(remote.BaseUrl, token));
        await using var agent = await McpKit.ConnectAsync(own, org.Key);
        await using var second = await McpKit.ConnectAsync(own, org.Key);

        var clock = Stopwatch.StartNew();
        var hanging = agent.CallAsync($"{id}__hang");
        while (!remote.Calls.Contains("hang"))
        {
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        Assert.Equal("echo: meanwhile", McpKit.Text(await second.CallAsync($"{id}__echo", new() { ["text"] = "meanwhile" })));
        Assert.False(hanging.IsCompleted, "The hanging call answered before its time limit.");
        var (code, message) = (await hanging).Error();
        Assert.Equal("timeout", code);
        Assert.Contains("within 10 s", message, StringComparison.Ordinal);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(9.5), TimeSpan.FromSeconds(60));

        var huge = agent.CallAsync($"{id}__huge");
        var during = await second.CallAsync($"{id}__add", new() { ["a"] = 1, ["b"] = 1 });
        Assert.Equal("2", McpKit.Text(during));
        var cut = await huge;
        Assert.Equal("result_too_large", cut.Error().Code);
        Assert.Contains("1024 KiB", McpKit.Text(cut), StringComparison.Ordinal);
        Assert.Equal("echo: after", McpKit.Text(await agent.CallAsync($"{id}__echo", new() { ["text"] = "after" })));
        Assert.Contains(own.Logs.Lines, l => l.Contains($"Remote tool hang failed on source {id}", StringComparison.Ordinal) && l.Contains("code timeout", StringComparison.Ordinal));
        Assert.Contains(own.Logs.Lines, l => l.Contains($"Remote tool huge failed on source {id}", StringComparison.Ordinal) && l.Contains("code result_too_large", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Calls_share_one_pooled_session_until_the_configuration_changes(bool sseOnly)
    {
        var token = Unique.Secret("mcp-token-");
        await using var remote = await RemoteMcpServer.StartAsync(token, sseOnly);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body(remote.BaseUrl, token));
        await using var agent = await McpKit.ConnectAsync(app, org.Key);

        await agent.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal($"echo: {i}", McpKit.Text(await agent.CallAsync($"{id}__echo", new() { ["text"] = $"{i}" })));
        }

        Assert.Equal(1, remote.Sessions);

        await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), """{"selected_tools": ["echo"]}""").Expect(HttpStatusCode.OK);
        Assert.Equal("echo: again", McpKit.Text(await agent.CallAsync($"{id}__echo", new() { ["text"] = "again" })));
        Assert.Equal(2, remote.Sessions);
        Assert.Equal("not_found", (await agent.CallAsync($"{id}__add", new() { ["a"] = 1, ["b"] = 2 })).Error().Code);
        Assert.DoesNotContain("add", remote.Calls);
    }

    [Fact]
    public async Task Forwarded_calls_count_against_the_per_minute_limit_of_calls_that_reach_a_source()
    {
        var token = Unique.Secret("mcp-token-");
        await using var remote = await RemoteMcpServer.StartAsync(token);
        await using var own = new OwnCaravan(new Dictionary<string, string?>
        {
            [CaravanApp.RateLimitsEnabled] = "true",
            ["Caravan:RateLimits:TestsPerMinute"] = "2",
            ["Caravan:RateLimits:RequestsPerMinute"] = "1000",
        });
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body(remote.BaseUrl, token));
        await using var agent = await McpKit.ConnectAsync(own, org.Key);

        Assert.Equal("echo: 1", McpKit.Text(await agent.CallAsync($"{id}__echo", new() { ["text"] = "1" })));
        Assert.Equal("echo: 2", McpKit.Text(await agent.CallAsync($"{id}__echo", new() { ["text"] = "2" })));
        var (code, message) = (await agent.CallAsync($"{id}__echo", new() { ["text"] = "3" })).Error();
        Assert.Equal("throttled", code);
        Assert.Contains("nothing was run", message, StringComparison.Ordinal);
        Assert.Equal(["echo", "echo"], remote.Calls);

        // Listing tools is an ordinary request: it still works.
        Assert.Contains($"{id}__echo", (await agent.ListToolsAsync(cancellationToken: TestContext.Current.CancellationToken)).Select(t => t.Name));
    }

    [Fact]
    public async Task A_base_url_at_a_metadata_address_is_refused_by_the_egress_policy_and_never_contacted()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body("http://169.254.169.254/mcp", Unique.Secret("t-")));
        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK);
        var failed = Steps(report).Single(s => s.Status == "failed");
        Assert.Equal(("egress", "egress_denied"), (failed.Name, failed.Code));

        await using var agent = await McpKit.ConnectAsync(app, org.Key);
        Assert.Equal("egress_denied", (await agent.CallAsync($"{id}__anything")).Error().Code);
    }

    [Fact]
    public async Task The_token_goes_only_to_the_origin_of_base_url_even_when_an_sse_server_names_another_for_its_messages()
    {
        await using var remote = await CrossOriginSseServer.StartAsync();
        var org = await app.NewOrganizationAsync();
        var token = Unique.Secret("mcp-token-");
        var id = await org.Http.CreateSourceAsync(Body(remote.BaseUrl, token));

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK);

        Assert.True(report["ok"]!.GetValue<bool>(), report.ToJsonString());
        Assert.StartsWith("1 tool: echo", Steps(report).Single(s => s.Name == "tools/list").Message!, StringComparison.Ordinal);
        Assert.Contains(remote.Requests, r => r is { Method: "GET", Origin: "stream" } && r.Authorization == "Bearer " + token);
        var messages = remote.Requests.Where(r => r.Origin == "messages").ToList();
        Assert.True(messages.Count >= 2, "initialize and tools/list went to the messages origin.");
        Assert.All(messages, r => Assert.Equal(string.Empty, r.Authorization));
    }

    [Fact]
    public async Task Bad_base_urls_are_refused_and_verify_refuses_tools_the_server_does_not_have()
    {
        var org = await app.NewOrganizationAsync();
        foreach (var (url, message) in new[]
        {
            ("ftp://mcp.example.com/mcp", "Enter an http or https URL, such as https://mcp.example.com/mcp."),
            ("mcp.example.com/mcp", "Enter an http or https URL, such as https://mcp.example.com/mcp."),
            ("https://user:pass-123456@mcp.example.com/mcp", "Remove the user name and password from the URL; send the token in its own field, which is stored encrypted."),
            ("https://mcp.example.com/mcp#part", "Remove the fragment (the part from #) from the URL."),
            ("https://mcp .example.com/mcp", "Enter an http or https URL, such as https://mcp.example.com/mcp."),
            ("https://", "Enter an http or https URL, such as https://mcp.example.com/mcp."),
        })
        {
            var refused = await org.Http.PostJsonAsync("/api/v1/sources/add/mcp/", new JsonObject { ["base_url"] = url }.ToJsonString()).Expect(HttpStatusCode.BadRequest);
            Assert.Equal([message], refused["errors"]!["base_url"]!.AsArray().Select(m => m!.GetValue<string>()));
            Assert.DoesNotContain("pass-123456", refused.ToJsonString(), StringComparison.Ordinal);
        }

        var missing = await org.Http.PostJsonAsync("/api/v1/sources/", """{"type": "MCP", "access_token": "abc-123456"}""").Expect(HttpStatusCode.BadRequest);
        Assert.Equal(["This field is required."], missing["errors"]!["base_url"]!.AsArray().Select(m => m!.GetValue<string>()));
        var list = await org.Http.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(0, list["count"]!.GetValue<int>());

        var token = Unique.Secret("mcp-token-");
        await using var remote = await RemoteMcpServer.StartAsync(token);
        var id = await org.Http.CreateSourceAsync(Body(remote.BaseUrl, token), "/api/v1/sources/add/mcp/");
        var unknown = await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config") + "?verify=true", """{"selected_tools": ["echo", "launch"]}""")
            .Expect(HttpStatusCode.BadRequest);
        Assert.Equal(["These tools do not exist on the MCP server: launch."], unknown["errors"]!["selected_tools"]!.AsArray().Select(m => m!.GetValue<string>()));
        await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config") + "?verify=true", """{"selected_tools": ["echo"]}""").Expect(HttpStatusCode.OK);
    }

    private static string Body(string baseUrl, string token, params string[] selected)
    {
        var body = new JsonObject { ["type"] = "MCP", ["base_url"] = baseUrl, ["access_token"] = token };
        if (selected.Length > 0)
        {
            body["selected_tools"] = new JsonArray([.. selected.Select(s => JsonValue.Create(s))]);
        }

        return body.ToJsonString();
    }

    private static List<(string Name, string Status, string? Code, string? Message)> Steps(JsonNode report) =>
        [.. report["steps"]!.AsArray().Select(s => (
            s!["name"]!.GetValue<string>(), s["status"]!.GetValue<string>(), s["code"]?.GetValue<string>(), s["message"]?.GetValue<string>()))];
}
