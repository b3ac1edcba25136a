using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>
/// The CLICKHOUSE driver against a real server over HTTP: <c>./test.sh</c> starts a ClickHouse and
/// names it in <c>CARAVAN_TEST_CLICKHOUSE</c> (a URL), <c>CARAVAN_TEST_CLICKHOUSE_USER</c> and
/// <c>CARAVAN_TEST_CLICKHOUSE_PASSWORD</c>. Each test makes its own databases.
/// </summary>
public sealed class ClickHouseConnectivityTests(CaravanApp app)
{
    private static readonly string? Server = Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE");
    private static readonly string User = Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE_USER") ?? "default";
    private static readonly string Password = Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE_PASSWORD") ?? string.Empty;

    [Fact]
    public async Task A_reachable_server_passes_every_step_with_tls_skipped_on_plain_http()
    {
        await using var scope = await Scope.CreateAsync("sales");
        var org = await app.NewOrganizationAsync();

        var unsaved = await org.Http.PostJsonAsync("/api/v1/sources/test/", scope.Body(database: "sales")).Expect(HttpStatusCode.OK);
        var id = await org.Http.CreateSourceAsync(scope.Body());
        var stored = await org.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);

        Reports.AssertPassed(unsaved);
        Reports.AssertPassed(stored);
        var tls = Reports.Step(stored, "tls");
        Assert.Equal("skipped", tls["status"]!.GetValue<string>());
        Assert.Contains("not encrypted", tls["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_password_is_auth_failed_and_never_shown()
    {
        var scope = Scope.Require();
        var org = await app.NewOrganizationAsync();
        var wrong = Unique.Secret("wrong-");
        var id = await org.Http.CreateSourceAsync(scope.Body(password: wrong));

        var report = await org.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);
        var unsaved = await org.Http.PostJsonAsync("/api/v1/sources/test/", scope.Body(password: wrong)).Expect(HttpStatusCode.OK);
        var discovery = await org.Http.GetAsync($"/api/v1/sources/{id}/schemas/").Expect(HttpStatusCode.BadGateway);

        Reports.AssertFailedAt(report, "authenticate", "auth_failed");
        Reports.AssertFailedAt(unsaved, "authenticate", "auth_failed");
        Assert.Equal("auth_failed", discovery["code"]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(discovery["detail"]!.GetValue<string>()));
        app.AssertNoSecrets([report.ToJsonString(), unsaved.ToJsonString(), discovery.ToJsonString()], wrong, Password);
    }

    [Fact]
    public async Task An_unknown_user_is_auth_failed()
    {
        var scope = Scope.Require();
        var org = await app.NewOrganizationAsync();
        var body = JsonNode.Parse(scope.Body())!;
        body["username"] = Unique.Name("cv");

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", body.ToJsonString()).Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "authenticate", "auth_failed");
        app.AssertNoSecrets([report.ToJsonString()], Password);
    }

    [Fact]
    public async Task A_missing_database_is_database_not_found()
    {
        var scope = Scope.Require();
        var org = await app.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", scope.Body(database: "missing")).Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "authenticate", "database_not_found");
        Assert.Contains(scope.Database("missing"), report.ToJsonString(), StringComparison.Ordinal);
        app.AssertNoSecrets([report.ToJsonString()], Password);
    }

    [Fact]
    public async Task Secure_on_a_plain_http_port_is_tls_failed()
    {
        // A plain HTTP server answers the TLS greeting with an HTTP error. (ClickHouse's own HTTP
        // port sometimes waits for more instead, which is a timeout; that is not what this checks.)
        using var plain = LoopbackListener.Answering("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        var org = await app.NewOrganizationAsync();
        var password = Unique.Secret("tls-");
        var body = JsonNode.Parse(Body("127.0.0.1", plain.Port, "nobody", password))!;
        body["secure"] = true;

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", body.ToJsonString()).Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "tls", "tls_failed");
        app.AssertNoSecrets([report.ToJsonString()], password);
    }

    [Fact]
    public Task A_closed_port_is_port_closed() =>
        DriverChecks.AssertClosedPortIsPortClosedAsync(app, (port, password) => Body("127.0.0.1", port, "nobody", password));

    [Fact]
    public Task A_silent_server_times_out_within_the_deadline() =>
        DriverChecks.AssertSilentServerTimesOutAsync((port, password) => Body("127.0.0.1", port, "nobody", password));

    [Fact]
    public async Task Discovery_lists_the_databases_with_the_selection_and_no_system_ones()
    {
        await using var scope = await Scope.CreateAsync("sales", "events", "archive");
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(scope.Body(selected: ["sales", "events"]));

        var body = await org.Http.GetAsync($"/api/v1/sources/{id}/schemas/").Expect(HttpStatusCode.OK);

        // The server is shared with tests running alongside: of the databases named like this
        // test's, exactly those it made are listed; the system databases never are.
        Assert.Equal("databases", body["kind"]!.GetValue<string>());
        var results = body["results"]!.AsArray().Select(r => (Name: r!["name"]!.GetValue<string>(), Selected: r["selected"]!.GetValue<bool>())).ToList();
        Assert.Equal(
            [(scope.Database("archive"), false), (scope.Database("events"), true), (scope.Database("sales"), true)],
            results.Where(r => r.Name.StartsWith(scope.Prefix, StringComparison.Ordinal)));
        Assert.Contains(("default", false), results);
        Assert.DoesNotContain(results, r => r.Name is "system" or "INFORMATION_SCHEMA" or "information_schema");
        Assert.All(results.Where(r => !r.Name.StartsWith(scope.Prefix, StringComparison.Ordinal)), r => Assert.False(r.Selected));
    }

    [Fact]
    public async Task Verify_refuses_a_missing_database_and_accepts_existing_ones()
    {
        await using var scope = await Scope.CreateAsync("sales", "events");
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(scope.Body());
        var missing = scope.Database("missing");

        var refused = await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/?verify=true",
            new JsonObject { ["selected_schemas"] = new JsonArray(scope.Database("sales"), missing) }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/?verify=true",
            new JsonObject { ["selected_schemas"] = new JsonArray(scope.Database("sales"), scope.Database("events")) }.ToJsonString())
            .Expect(HttpStatusCode.OK);
        var after = await org.Http.GetAsync($"/api/v1/sources/{id}/schemas/").Expect(HttpStatusCode.OK);

        var message = Assert.Single(refused["errors"]!["selected_schemas"]!.AsArray())!.GetValue<string>();
        Assert.Contains(missing, message, StringComparison.Ordinal);
        Assert.DoesNotContain(scope.Database("sales"), message, StringComparison.Ordinal);
        Assert.Equal(
            [scope.Database("events"), scope.Database("sales")],
            after["results"]!.AsArray().Where(r => r!["selected"]!.GetValue<bool>()).Select(r => r!["name"]!.GetValue<string>()));
        app.AssertNoSecrets([refused.ToJsonString(), after.ToJsonString()], Password);
    }

    private static string Body(string host, int port, string user, string password, string? database = null, IEnumerable<string>? selected = null)
    {
        var body = new JsonObject
        {
            ["type"] = "clickhouse",
            ["account_name"] = "ClickHouse under test",
            ["host"] = host,
            ["port"] = port,
            ["username"] = user,
            ["password"] = password,
        };
        if (database is not null)
        {
            body["database"] = database;
        }

        if (selected is not null)
        {
            body["selected_schemas"] = new JsonArray([.. selected.Select(s => JsonValue.Create(s))]);
        }

        return body.ToJsonString();
    }

    /// <summary>Databases named <c>{prefix}_*</c> that the test made on the shared server, dropped afterwards.</summary>
    private sealed class Scope : IAsyncDisposable
    {
        private readonly Uri _server;
        private readonly List<string> _databases = [];

        private Scope(Uri server)
        {
            _server = server;
        }

        public string Prefix { get; } = Unique.Name("cv");

        public static Scope Require()
        {
            Assert.SkipWhen(string.IsNullOrEmpty(Server), "No ClickHouse server configured (./test.sh starts one and sets CARAVAN_TEST_CLICKHOUSE).");
            return new Scope(new Uri(Server!));
        }

        public static async Task<Scope> CreateAsync(params string[] databases)
        {
            var scope = Require();
            foreach (var database in databases)
            {
                scope._databases.Add(scope.Database(database));
                await scope.RunAsync($"CREATE DATABASE {scope.Database(database)}");
            }

            return scope;
        }

        public string Database(string name) => $"{Prefix}_{name}";

        public string Body(string? password = null, string? database = null, IEnumerable<string>? selected = null) =>
            ClickHouseConnectivityTests.Body(_server.Host, _server.Port, User, password ?? Password,
                database is null ? null : Database(database), selected?.Select(Database));

        public async ValueTask DisposeAsync()
        {
            foreach (var database in _databases)
            {
                await RunAsync($"DROP DATABASE IF EXISTS {database}");
            }
        }

        private async Task RunAsync(string sql)
        {
            using var http = new HttpClient { BaseAddress = _server };
            using var request = new HttpRequestMessage(HttpMethod.Post, "/") { Content = new StringContent(sql, Encoding.UTF8) };
            request.Headers.Add("X-ClickHouse-User", User);
            request.Headers.Add("X-ClickHouse-Key", Password);
            using var response = await http.SendAsync(request);
            Assert.True(response.IsSuccessStatusCode, $"{sql}: {await response.Content.ReadAsStringAsync()}");
        }
    }
}
