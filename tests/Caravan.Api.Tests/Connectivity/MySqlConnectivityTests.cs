using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using MySqlConnector;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>
/// The MYSQL driver against a real server: <c>./test.sh</c> starts a MariaDB and names its
/// administrator in <c>CARAVAN_TEST_MYSQL</c>. Each test makes its own user and databases.
/// </summary>
public sealed class MySqlConnectivityTests(CaravanApp app)
{
    private static readonly string? Admin = Environment.GetEnvironmentVariable("CARAVAN_TEST_MYSQL");

    [Fact]
    public async Task A_reachable_server_passes_every_step()
    {
        await using var scope = await Scope.CreateAsync("sales");
        var org = await app.NewOrganizationAsync();

        var unsaved = await org.Http.PostJsonAsync("/api/v1/sources/test/", scope.Body("sales")).Expect(HttpStatusCode.OK);
        var id = await org.Http.CreateSourceAsync(scope.Body("sales"));
        var stored = await org.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);

        Reports.AssertPassed(unsaved);
        Reports.AssertPassed(stored);
        var tls = Reports.Step(stored, "tls");
        if (tls["status"]!.GetValue<string>() == "ok")
        {
            Assert.Contains("encrypted", tls["message"]!.GetValue<string>(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_SingleStore_source_goes_through_the_same_driver()
    {
        await using var scope = await Scope.CreateAsync("sales");
        var org = await app.NewOrganizationAsync();
        var body = JsonNode.Parse(scope.Body("sales"))!;
        body["type"] = "singlestore";

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", body.ToJsonString()).Expect(HttpStatusCode.OK);

        Reports.AssertPassed(report);
    }

    [Fact]
    public async Task A_wrong_password_is_auth_failed_and_never_shown()
    {
        await using var scope = await Scope.CreateAsync("sales");
        var org = await app.NewOrganizationAsync();
        var wrong = Unique.Secret("wrong-");
        var id = await org.Http.CreateSourceAsync(scope.Body("sales", password: wrong));

        var report = await org.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);
        var unsaved = await org.Http.PostJsonAsync("/api/v1/sources/test/", scope.Body("sales", password: wrong)).Expect(HttpStatusCode.OK);
        var discovery = await org.Http.GetAsync($"/api/v1/sources/{id}/schemas/").Expect(HttpStatusCode.BadGateway);

        Reports.AssertFailedAt(report, "authenticate", "auth_failed");
        Reports.AssertFailedAt(unsaved, "authenticate", "auth_failed");
        Assert.Equal("auth_failed", discovery["code"]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(discovery["detail"]!.GetValue<string>()));
        app.AssertNoSecrets([report.ToJsonString(), unsaved.ToJsonString(), discovery.ToJsonString()], wrong, scope.Password);
    }

    [Fact]
    public async Task A_missing_database_is_database_not_found()
    {
        await using var scope = await Scope.CreateAsync("sales");
        var org = await app.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", scope.Body("missing")).Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "authenticate", "database_not_found");
        Assert.Contains(scope.Database("missing"), report.ToJsonString(), StringComparison.Ordinal);
        app.AssertNoSecrets([report.ToJsonString()], scope.Password);
    }

    [Fact]
    public Task A_closed_port_is_port_closed() =>
        DriverChecks.AssertClosedPortIsPortClosedAsync(app, (port, password) => Body("127.0.0.1", port, "nobody", password, "anything"));

    [Fact]
    public Task A_silent_server_times_out_within_the_deadline() =>
        DriverChecks.AssertSilentServerTimesOutAsync((port, password) => Body("127.0.0.1", port, "nobody", password, "anything"));

    [Fact]
    public async Task Discovery_lists_the_databases_the_user_sees_with_the_selection()
    {
        await using var scope = await Scope.CreateAsync("sales", "events", "archive");
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(scope.Body("sales", selected: ["sales", "events"]));

        var body = await org.Http.GetAsync($"/api/v1/sources/{id}/schemas/").Expect(HttpStatusCode.OK);

        // The user's grants cover its own databases only; the system ones are left out.
        var expected = new JsonObject
        {
            ["kind"] = "databases",
            ["results"] = new JsonArray(
                new JsonObject { ["name"] = scope.Database("archive"), ["selected"] = false },
                new JsonObject { ["name"] = scope.Database("events"), ["selected"] = true },
                new JsonObject { ["name"] = scope.Database("sales"), ["selected"] = true }),
        };
        Assert.Equal(expected.ToJsonString(), body.Compact());
    }

    [Fact]
    public async Task Verify_refuses_a_missing_database_and_accepts_existing_ones()
    {
        await using var scope = await Scope.CreateAsync("sales", "events");
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(scope.Body("sales"));
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
        Assert.All(after["results"]!.AsArray(), r => Assert.True(r!["selected"]!.GetValue<bool>()));
        app.AssertNoSecrets([refused.ToJsonString(), after.ToJsonString()], scope.Password);
    }

    private static string Body(string host, int port, string user, string password, string database, IEnumerable<string>? selected = null)
    {
        var body = new JsonObject
        {
            ["type"] = "mysql",
            ["account_name"] = "MariaDB under test",
            ["hostname"] = host,
            ["port"] = port,
            ["username"] = user,
            ["password"] = password,
            ["database_name"] = database,
        };
        if (selected is not null)
        {
            body["selected_schemas"] = new JsonArray([.. selected.Select(s => JsonValue.Create(s))]);
        }

        return body.ToJsonString();
    }

    /// <summary>
    /// A user of the test's own with SELECT on the databases named <c>{prefix}_*</c>, some of which
    /// exist: what it sees is exactly what the test made, whatever runs alongside.
    /// </summary>
    private sealed class Scope : IAsyncDisposable
    {
        private readonly MySqlConnectionStringBuilder _admin;
        private readonly List<string> _databases = [];

        private Scope(MySqlConnectionStringBuilder admin)
        {
            _admin = admin;
        }

        public string Prefix { get; } = Unique.Name("cv");

        public string Password { get; } = Unique.Secret("pw-");

        public static async Task<Scope> CreateAsync(params string[] databases)
        {
            Assert.SkipWhen(string.IsNullOrEmpty(Admin), "No MySQL server configured (./test.sh starts a MariaDB and sets CARAVAN_TEST_MYSQL).");
            var scope = new Scope(new MySqlConnectionStringBuilder(Admin) { Pooling = false });
            await scope.RunAsync(
                $"CREATE USER '{scope.Prefix}'@'127.0.0.1' IDENTIFIED BY '{scope.Password}'",
                $"GRANT SELECT ON `{scope.Prefix}\\_%`.* TO '{scope.Prefix}'@'127.0.0.1'");
            foreach (var database in databases)
            {
                scope._databases.Add(scope.Database(database));
                await scope.RunAsync($"CREATE DATABASE `{scope.Database(database)}`");
            }

            return scope;
        }

        public string Database(string name) => $"{Prefix}_{name}";

        public string Body(string database, string? password = null, IEnumerable<string>? selected = null) =>
            MySqlConnectivityTests.Body(_admin.Server, (int)_admin.Port, Prefix, password ?? Password, Database(database), selected?.Select(Database));

        public async ValueTask DisposeAsync()
        {
            await RunAsync([$"DROP USER IF EXISTS '{Prefix}'@'127.0.0.1'", .. _databases.Select(d => $"DROP DATABASE IF EXISTS `{d}`")]);
        }

        private async Task RunAsync(params string[] statements)
        {
            await using var connection = new MySqlConnection(_admin.ConnectionString);
            await connection.OpenAsync();
            foreach (var sql in statements)
            {
                await using var command = new MySqlCommand(sql, connection);
                await command.ExecuteNonQueryAsync();
            }
        }
    }
}
