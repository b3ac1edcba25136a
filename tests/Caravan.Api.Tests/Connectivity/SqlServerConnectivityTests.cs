using Caravan.Api.Connectors.SqlServer;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Connectors;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Data.SqlClient;
using static Caravan.Api.Tests.Connectivity.ConnectivityTestKit;
using static Caravan.Api.Tests.Connectivity.Reports;

namespace Caravan.Api.Tests.Connectivity;

public sealed class SqlServerConnectivityTests(CaravanApp app)
{
    private const string Password = "Sq1-Secret-Pa55word";

    [Fact]
    public void Settings_from_the_fields_use_the_checked_address_and_keep_the_name_for_tls()
    {
        var connection = Connection("MSSQL", new JsonObject
        {
            ["hostname"] = "db.example.com", ["port"] = 1444, ["username"] = "reporter", ["password"] = Password, ["database_name"] = "sales",
        });

        var builder = SqlServerDriver.Build(connection, DatabaseEndpoint.Direct("db.example.com", IPAddress.Parse("10.1.2.3"), connection.Port), TimeSpan.FromSeconds(7.2));

        Assert.Equal("tcp:10.1.2.3,1444", builder.DataSource);
        Assert.Equal("db.example.com", builder.HostNameInCertificate);
        Assert.Equal("sales", builder.InitialCatalog);
        Assert.Equal("reporter", builder.UserID);
        Assert.Equal(Password, builder.Password);
        Assert.Equal("caravan", builder.ApplicationName);
        Assert.Equal(ApplicationIntent.ReadOnly, builder.ApplicationIntent);
        Assert.False(builder.Pooling);
        Assert.Equal(8, builder.ConnectTimeout);
        Assert.Equal(8, builder.CommandTimeout);
        Assert.Equal(SqlConnectionEncryptOption.Mandatory, builder.Encrypt);
        Assert.False(builder.TrustServerCertificate);
    }

    [Theory]
    [InlineData("Encrypt=Strict", "Strict", false)]
    [InlineData("Encrypt=false;TrustServerCertificate=True", "Optional", true)]
    [InlineData("Encrypt=yes;Trust Server Certificate=yes", "Mandatory", true)]
    [InlineData("Encrypt=optional", "Optional", false)]
    public void Settings_from_a_connection_string_take_its_encryption_options(string options, string encrypt, bool trust)
    {
        var connection = Connection("MSSQL", new JsonObject
        {
            ["connection_string"] = $"Server=tcp:sql.example.com,1500;Database=sales;User ID=reporter;Password={Password};{options}",
        });

        var builder = SqlServerDriver.Build(connection, DatabaseEndpoint.Direct(connection.Text("hostname")!, IPAddress.Parse("192.168.0.9"), connection.Port), TimeSpan.FromSeconds(3));

        Assert.Equal("tcp:192.168.0.9,1500", builder.DataSource);
        Assert.Equal("sql.example.com", builder.HostNameInCertificate);
        Assert.Equal(SqlConnectionEncryptOption.Parse(encrypt), builder.Encrypt);
        Assert.Equal(trust, builder.TrustServerCertificate);
        Assert.Equal(Password, builder.Password);
    }

    [Fact]
    public void An_ip_literal_host_sets_no_certificate_name_unless_one_is_given()
    {
        var plain = Connection("MSSQL", new JsonObject { ["connection_string"] = $"Server=10.0.0.4;Database=d;User ID=u;Password={Password}" });
        Assert.True(string.IsNullOrEmpty(SqlServerDriver.Build(plain, DatabaseEndpoint.Direct("10.0.0.4", IPAddress.Parse("10.0.0.4"), plain.Port), TimeSpan.FromSeconds(3)).HostNameInCertificate));

        var named = Connection("MSSQL", new JsonObject
        {
            ["connection_string"] = $"Server=10.0.0.4;Database=d;User ID=u;Password={Password};HostNameInCertificate=sql.corp.example",
        });
        Assert.Equal("sql.corp.example", SqlServerDriver.Build(named, DatabaseEndpoint.Direct("10.0.0.4", IPAddress.Parse("10.0.0.4"), named.Port), TimeSpan.FromSeconds(3)).HostNameInCertificate);
    }

    [Theory]
    [InlineData(18456, "auth_failed")]
    [InlineData(18470, "auth_failed")]
    [InlineData(4060, "database_not_found")]
    [InlineData(229, "insufficient_privilege")]
    [InlineData(262, "insufficient_privilege")]
    [InlineData(300, "insufficient_privilege")]
    [InlineData(-2, "timeout")]
    [InlineData(208, "driver_error")]
    public void Error_numbers_map_to_stable_codes(int number, string code)
    {
        var failure = SqlServerDriver.Map([new SqlServerError(number, 14, "message from the server")], new InvalidOperationException("outer"));
        Assert.Equal(code, failure.Code);
    }

    [Fact]
    public void A_missing_database_wins_over_the_login_failure_that_follows_it()
    {
        var failure = SqlServerDriver.Map(
            [new SqlServerError(4060, 11, "Cannot open database \"nope\" requested by the login. The login failed."), new SqlServerError(18456, 14, "Login failed for user 'u'.")],
            new InvalidOperationException("outer"));
        Assert.Equal(FailureCodes.DatabaseNotFound, failure.Code);
        Assert.Contains("nope", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tls_failures_map_to_tls_failed_on_the_tls_step()
    {
        var provider = SqlServerDriver.Map(
            [new SqlServerError(0, 20, "A connection was successfully established with the server, but then an error occurred during the pre-login handshake. (provider: SSL Provider, error: 0 - The certificate chain was issued by an authority that is not trusted.)")],
            new InvalidOperationException("outer"));
        Assert.Equal(FailureCodes.TlsFailed, provider.Code);
        Assert.Equal("tls", provider.Step);

        var inner = SqlServerDriver.Map([new SqlServerError(35, 20, "An internal exception was caught")],
            new InvalidOperationException("outer", new AuthenticationException("The remote certificate is invalid")));
        Assert.Equal(FailureCodes.TlsFailed, inner.Code);
    }

    [Fact]
    public void A_refused_socket_maps_to_port_closed()
    {
        var failure = SqlServerDriver.Map([], new InvalidOperationException("outer", new SocketException((int)SocketError.ConnectionRefused)));
        Assert.Equal(FailureCodes.PortClosed, failure.Code);
    }

    [Fact]
    public async Task Without_culture_data_the_driver_says_how_to_fix_the_build()
    {
        Assert.SkipWhen(SqlServerDriver.GlobalizationAvailable, "This build has culture data; the message is for builds without.");
        var failure = await Assert.ThrowsAsync<ConnectivityException>(() => SqlServerDriver.OpenAsync(new SqlConnectionStringBuilder(), CancellationToken.None));
        Assert.Equal(FailureCodes.DriverError, failure.Code);
        Assert.Contains("InvariantGlobalization=false", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_real_client_maps_a_closed_port_a_silent_server_and_an_untrusted_certificate()
    {
        RequireSqlClient();
        var connection = Connection("MSSQL", new JsonObject
        {
            ["connection_string"] = $"Server=tcp:db.caravan.test,1433;Database=d;User ID=u;Password={Password};Encrypt=Strict",
        });

        // SqlClient retries a refused connection until its timeout, then reports a generic network
        // error (its inner SocketException says "Success"): the connect step catches closed ports first.
        var refused = await Assert.ThrowsAsync<ConnectivityException>(() => OpenAsync(connection, Loopback.ClosedPort(), TimeSpan.FromSeconds(2)));
        Assert.Equal(FailureCodes.DriverError, refused.Code);
        Assert.Contains("network-related", refused.Message, StringComparison.Ordinal);

        using var silent = LoopbackListener.Silent();
        var clock = Stopwatch.StartNew();
        var hung = await Assert.ThrowsAnyAsync<Exception>(() => OpenAsync(connection, silent.Port, TimeSpan.FromSeconds(2)));
        Assert.True(hung is OperationCanceledException || hung is ConnectivityException { Code: FailureCodes.Timeout }, hung.ToString());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(6), $"took {clock.Elapsed}");

        using var tls = LoopbackListener.UntrustedTls();
        var untrusted = await Assert.ThrowsAsync<ConnectivityException>(() => OpenAsync(connection, tls.Port, TimeSpan.FromSeconds(5)));
        Assert.Equal(FailureCodes.TlsFailed, untrusted.Code);
        Assert.DoesNotContain(Password, untrusted.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_named_instance_without_a_port_is_an_actionable_driver_error()
    {
        var org = await app.NewOrganizationAsync();
        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", new JsonObject
        {
            ["type"] = "MSSQL", ["connection_string"] = $"Server=127.0.0.1\\SQLEXPRESS;Database=d;User ID=u;Password={Password}",
        }.ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.False(report["ok"]!.GetValue<bool>());
        Assert.Equal("resolve", Failed(report));
        Assert.Equal(FailureCodes.DriverError, Code(report, "resolve"));
        var message = Step(report, "resolve")["message"]!.GetValue<string>();
        Assert.Contains("SQLEXPRESS", message, StringComparison.Ordinal);
        Assert.Contains("SQL Browser", message, StringComparison.Ordinal);
        Assert.Contains("port", message, StringComparison.Ordinal);
        Assert.Equal("skipped", Status(report, "connect"));
    }

    [Fact]
    public async Task A_named_instance_with_a_port_connects_to_the_port()
    {
        var org = await app.NewOrganizationAsync();
        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", new JsonObject
        {
            ["type"] = "MSSQL", ["connection_string"] = $"Server=127.0.0.1\\SQLEXPRESS,{Loopback.ClosedPort()};Database=d;User ID=u;Password={Password}",
        }.ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.Equal(FailureCodes.PortClosed, Code(report, "connect"));
    }

    [Fact]
    public async Task A_closed_port_is_port_closed()
    {
        var org = await app.NewOrganizationAsync();
        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Body("127.0.0.1", Loopback.ClosedPort())).Expect(HttpStatusCode.OK);

        Assert.False(report["ok"]!.GetValue<bool>());
        Assert.Equal("ok", Status(report, "resolve"));
        Assert.Equal("ok", Status(report, "egress"));
        Assert.Equal(FailureCodes.PortClosed, Code(report, "connect"));
        foreach (var later in new[] { "tls", "authenticate", "query", "schemas" })
        {
            Assert.Equal("skipped", Status(report, later));
        }

        app.AssertNoSecrets([report.Compact()], Password);
    }

    [Fact]
    public async Task A_server_that_never_answers_times_out_within_the_deadline()
    {
        RequireSqlClient();
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Connectivity:TestTimeoutSeconds"] = "3" });
        var org = await own.NewOrganizationAsync();
        using var silent = LoopbackListener.Silent();

        var clock = Stopwatch.StartNew();
        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Body("127.0.0.1", silent.Port)).Expect(HttpStatusCode.OK);
        clock.Stop();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal("ok", Status(report, "connect"));
        Assert.Equal(FailureCodes.Timeout, Code(report, Failed(report)));
        Assert.True(silent.Accepted >= 1);
        own.AssertNoSecrets([report.Compact()], Password);
    }

    [Fact]
    public async Task An_untrusted_certificate_under_strict_encryption_is_tls_failed()
    {
        RequireSqlClient();
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Connectivity:TestTimeoutSeconds"] = "5" });
        var org = await own.NewOrganizationAsync();
        using var tls = LoopbackListener.UntrustedTls();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", new JsonObject
        {
            ["type"] = "MSSQL",
            ["connection_string"] = $"Server=tcp:127.0.0.1,{tls.Port};Database=d;User ID=u;Password={Password};Encrypt=Strict",
        }.ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.Equal("tls", Failed(report));
        Assert.Equal(FailureCodes.TlsFailed, Code(report, "tls"));
        Assert.Equal("skipped", Status(report, "authenticate"));
        own.AssertNoSecrets([report.Compact()], Password);
    }

    [Fact]
    public async Task A_metadata_address_is_refused_before_any_connection()
    {
        var org = await app.NewOrganizationAsync();
        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Body("169.254.169.254", 1433)).Expect(HttpStatusCode.OK);

        Assert.Equal("ok", Status(report, "resolve"));
        Assert.Equal(FailureCodes.EgressDenied, Code(report, "egress"));
        Assert.Equal("skipped", Status(report, "connect"));
        Assert.Equal("skipped", Status(report, "authenticate"));
        app.AssertNoSecrets([report.Compact()], Password);
    }

    [Fact]
    public async Task Discovery_of_a_stored_source_that_cannot_be_reached_is_a_502_without_secrets()
    {
        RequireSqlClient();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body("127.0.0.1", Loopback.ClosedPort()));

        var failure = await org.Http.GetAsync($"/api/v1/sources/{id}/schemas/").Expect(HttpStatusCode.BadGateway);

        Assert.Equal(FailureCodes.PortClosed, failure["code"]!.GetValue<string>());
        app.AssertNoSecrets([failure.Compact()], Password);
    }

    /// <summary>
    /// SqlClient refuses to open connections in invariant globalization mode (Directory.Build.props
    /// sets InvariantGlobalization); tests that need a real SqlClient connection attempt say so.
    /// </summary>
    private static void RequireSqlClient() => Assert.SkipUnless(SqlServerDriver.GlobalizationAvailable,
        "SqlClient cannot connect in invariant globalization mode; build with -p:InvariantGlobalization=false to run this test.");

    private static async Task OpenAsync(SourceConnection connection, int port, TimeSpan limit)
    {
        using var deadline = new CancellationTokenSource(limit + TimeSpan.FromSeconds(2));
        var builder = SqlServerDriver.Build(connection, DatabaseEndpoint.Direct("db.caravan.test", IPAddress.Loopback, connection.Port), limit);
        builder.DataSource = $"tcp:127.0.0.1,{port}";
        await using var session = await SqlServerDriver.OpenAsync(builder, deadline.Token);
    }

    private static string Body(string host, int port) => new JsonObject
    {
        ["type"] = "MSSQL", ["hostname"] = host, ["port"] = port, ["username"] = "reporter", ["password"] = Password, ["database_name"] = "sales",
    }.ToJsonString();
}
