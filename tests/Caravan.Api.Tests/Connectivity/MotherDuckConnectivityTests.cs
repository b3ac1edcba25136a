using Caravan.Api.Connectors.MotherDuck;
using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using DuckDB.NET.Data;
using static Caravan.Api.Tests.Connectivity.Reports;

namespace Caravan.Api.Tests.Connectivity;

public sealed class MotherDuckConnectivityTests(CaravanApp app)
{
    private const string Token = "md-token-Secret-eyJhbGciOiJIUzI1NiJ9.cGF5bG9hZA.c2ln";

    [Theory]
    [InlineData("my_db", false)]
    [InlineData("md:my_db", false)]
    [InlineData("/var/data/sales.duckdb", true)]
    [InlineData("sales.db", true)]
    [InlineData("SALES.DUCKDB", true)]
    [InlineData("data/sales", true)]
    [InlineData("C:\\data\\sales", true)]
    public void Local_files_are_told_from_motherduck_databases(string name, bool local) =>
        Assert.Equal(local, MotherDuckDriver.IsLocalFile(name));

    [Fact]
    public void The_cloud_connection_string_names_the_database_and_keeps_tokens_apart()
    {
        var text = MotherDuckDriver.CloudConnectionString("md:my_db", Token);
        var builder = new DuckDBConnectionStringBuilder { ConnectionString = text };
        Assert.Equal($"md:my_db?motherduck_token={Token}", builder.DataSource);
        Assert.Equal("caravan", builder.CustomUserAgent);

        foreach (var name in new[] { "my_db?saas_mode=false", "my_db&x=1", "my db", "md:" })
        {
            Assert.Equal(FailureCodes.DriverError, Assert.Throws<ConnectivityException>(() => MotherDuckDriver.CloudConnectionString(name, Token)).Code);
        }

        Assert.Equal(FailureCodes.AuthFailed, Assert.Throws<ConnectivityException>(() => MotherDuckDriver.CloudConnectionString("my_db", null)).Code);
    }

    [Fact]
    public void The_local_connection_string_is_read_only_without_external_access()
    {
        var builder = new DuckDBConnectionStringBuilder { ConnectionString = MotherDuckDriver.LocalConnectionString("/tmp/x.duckdb") };
        Assert.Equal(DuckDBAccessMode.ReadOnly, builder.AccessMode);
        Assert.False(builder.EnableExternalAccess);
        Assert.False(builder.AutoinstallKnownExtensions);
    }

    [Theory]
    [InlineData("IO Error: Failed to download extension \"motherduck\" at URL \"http://extensions.duckdb.org/v1.4.1/linux_amd64/motherduck.duckdb_extension.gz\"", "driver_error", "extensions.duckdb.org")]
    [InlineData("Invalid Input Error: Initialization function \"motherduck_init\" from file failed: Your request is not authenticated. Please check your MotherDuck token.", "auth_failed", "token")]
    [InlineData("Catalog Error: Database \"nope\" does not exist", "database_not_found", "does not exist")]
    [InlineData("IO Error: Cannot open file \"/data/x.duckdb\": Permission denied", "insufficient_privilege", "rights")]
    [InlineData("Parser Error: syntax error at or near \"SELEC\"", "driver_error", "DuckDB error")]
    public void Duckdb_messages_map_to_stable_codes(string message, string code, string hint)
    {
        var failure = MotherDuckDriver.Map(new InvalidOperationException(message));
        Assert.Equal(code, failure.Code);
        Assert.Contains(hint, failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_the_network_md_fails_cleanly_without_the_token()
    {
        // DuckDB has to download its MotherDuck extension first, which cannot happen here.
        var failure = await Assert.ThrowsAsync<ConnectivityException>(async () =>
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await using var session = await MotherDuckDriver.OpenAsync(MotherDuckDriver.CloudConnectionString("my_db", Token), deadline.Token);
        });

        Assert.Equal(FailureCodes.DriverError, failure.Code);
        Assert.Contains("extension", failure.Message, StringComparison.Ordinal);
        var scrubbed = new SecretScrubber([Token]).Scrub(failure.Message);
        Assert.DoesNotContain(Token, scrubbed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_local_file_is_refused_by_default()
    {
        var path = NewDatabase();
        var org = await app.NewOrganizationAsync();
        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Body(path)).Expect(HttpStatusCode.OK);

        Assert.False(report["ok"]!.GetValue<bool>());
        Assert.Equal("skipped", Status(report, "resolve"));
        Assert.Equal(FailureCodes.EgressDenied, Code(report, "egress"));
        Assert.Contains("Caravan__Egress__AllowLocalFiles", Step(report, "egress")["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("skipped", Status(report, "connect"));

        var id = await org.Http.CreateSourceAsync(Body(path));
        var failure = await org.Http.GetAsync($"/api/v1/sources/{id}/schemas/").Expect(HttpStatusCode.BadGateway);
        Assert.Equal(FailureCodes.EgressDenied, failure["code"]!.GetValue<string>());
        app.AssertNoSecrets([report.Compact() + failure.Compact()], Token);
    }

    [Fact]
    public async Task A_local_file_works_when_allowed_and_its_schemas_are_discovered()
    {
        var path = NewDatabase();
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Egress:AllowLocalFiles"] = "true" });
        var org = await own.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Body(path)).Expect(HttpStatusCode.OK);
        Assert.True(report["ok"]!.GetValue<bool>(), report.Compact());
        Assert.Equal("ok", Status(report, "egress"));
        Assert.Equal("ok", Status(report, "connect"));
        Assert.Equal("skipped", Status(report, "authenticate"));
        Assert.Equal("ok", Status(report, "query"));
        Assert.Equal("ok", Status(report, "schemas"));

        var id = await org.Http.CreateSourceAsync(Body(path));
        var discovery = await org.Http.GetAsync($"/api/v1/sources/{id}/schemas/").Expect(HttpStatusCode.OK);
        Assert.Equal("schemas", discovery["kind"]!.GetValue<string>());
        var results = discovery["results"]!.AsArray();
        Assert.Equal(["main", "sales", "staging"], results.Select(r => r!["name"]!.GetValue<string>()));
        Assert.All(results, r => Assert.False(r!["selected"]!.GetValue<bool>()));
        own.AssertNoSecrets([report.Compact() + discovery.Compact()], Token);
    }

    [Fact]
    public async Task A_missing_local_file_is_database_not_found_and_is_not_created()
    {
        var path = Path.Combine(CaravanApp.NewDataDirectory(), "missing.duckdb");
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Egress:AllowLocalFiles"] = "true" });
        var org = await own.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Body(path)).Expect(HttpStatusCode.OK);

        Assert.Equal("connect", Failed(report));
        Assert.Equal(FailureCodes.DatabaseNotFound, Code(report, "connect"));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task The_local_file_is_opened_read_only()
    {
        var path = NewDatabase();
        await using var session = await MotherDuckDriver.OpenAsync(MotherDuckDriver.LocalConnectionString(path), CancellationToken.None);
        using var command = session.CreateCommand();
        command.CommandText = "CREATE TABLE sales.more (id INTEGER)";
        Assert.ThrowsAny<Exception>(() => command.ExecuteNonQuery());
    }

    [Fact]
    public async Task A_motherduck_database_without_the_network_fails_without_the_token()
    {
        var org = await app.NewOrganizationAsync();
        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", new JsonObject
        {
            ["type"] = "MOTHERDUCK", ["database_name"] = "my_db", ["token"] = Token,
        }.ToJsonString()).Expect(HttpStatusCode.OK);

        // Here api.motherduck.com does not resolve; with a network, the extension would run next.
        Assert.False(report["ok"]!.GetValue<bool>());
        app.AssertNoSecrets([report.Compact()], Token);
    }

    /// <summary>A DuckDB file with the schemas main, sales and staging, closed before the test uses it.</summary>
    private static string NewDatabase()
    {
        var path = Path.Combine(CaravanApp.NewDataDirectory(), "warehouse.duckdb");
        using var connection = new DuckDBConnection($"Data Source={path}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "CREATE SCHEMA sales; CREATE SCHEMA staging; CREATE TABLE sales.orders (id INTEGER); INSERT INTO sales.orders VALUES (1);";
        command.ExecuteNonQuery();
        return path;
    }

    private static string Body(string databaseName) => new JsonObject
    {
        ["type"] = "MOTHERDUCK", ["database_name"] = databaseName, ["token"] = Token,
    }.ToJsonString();
}
