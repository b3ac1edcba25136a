using Caravan.Api.Connectors.MongoDb;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;
using MongoDB.Bson;
using MongoDB.Driver;
using MongoDB.Driver.Core.Clusters;
using MongoDB.Driver.Core.Configuration;
using MongoDB.Driver.Core.Connections;
using MongoDB.Driver.Core.Servers;
using static Caravan.Api.Tests.Connectivity.ConnectivityTestKit;
using static Caravan.Api.Tests.Connectivity.Reports;

namespace Caravan.Api.Tests.Connectivity;

public sealed class MongoDbConnectivityTests(CaravanApp app)
{
    private const string Password = "M0ngo-Secret-Pa55";

    [Fact]
    public async Task Settings_from_a_connection_string_keep_every_host_and_add_caravans_own()
    {
        var connection = Connection("MONGODB", new JsonObject
        {
            ["connection_string"] = $"mongodb://reader:{Password}@db1.example.com:27018,db2.example.com/sales?replicaSet=rs0&tls=true",
        });

        var settings = MongoDbDriver.Settings(connection);
        Assert.Equal(["db1.example.com:27018", "db2.example.com:27017"], settings.Servers.Select(s => s.ToString()));
        Assert.Equal("reader", settings.Credential.Username);
        Assert.True(settings.UseTls);
        Assert.Equal("sales", MongoDbDriver.DatabaseName(connection));

        await using var proxy = new EgressProxy(Network());
        var prepared = MongoDbDriver.Prepare(settings, proxy, new ServerFailures(), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(2));
        Assert.Equal("caravan", prepared.ApplicationName);
        Assert.Equal(ReadPreference.SecondaryPreferred, prepared.ReadPreference);
        Assert.Equal(TimeSpan.FromSeconds(4), prepared.ServerSelectionTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), prepared.ConnectTimeout);
        Assert.False(prepared.RetryReads);
        Assert.Equal("127.0.0.1", prepared.Socks5ProxySettings.Host);
        Assert.Equal(proxy.Port, prepared.Socks5ProxySettings.Port);
        Assert.Equal("rs0", prepared.ReplicaSetName);
        Assert.Null(settings.Socks5ProxySettings);
    }

    [Fact]
    public void Settings_from_the_older_fields_authenticate_against_the_named_database()
    {
        var connection = Connection("MONGODB", new JsonObject
        {
            ["hostname"] = "mongo.internal", ["port"] = 27100, ["username"] = "reader", ["password"] = Password, ["database_name"] = "sales",
        });

        var settings = MongoDbDriver.Settings(connection);
        Assert.Equal("mongo.internal:27100", settings.Server.ToString());
        Assert.Equal("reader", settings.Credential.Username);
        Assert.Equal("sales", settings.Credential.Source);
        Assert.Equal("sales", MongoDbDriver.DatabaseName(connection));
        Assert.False(settings.UseTls);
    }

    [Theory]
    [InlineData("::1", "[::1]:27100")]
    [InlineData("[::1]", "[::1]:27100")]
    [InlineData("fe80::1", "[fe80::1]:27100")]
    [InlineData("2001:db8::5", "[2001:db8::5]:27100")]
    [InlineData("10.0.0.5", "10.0.0.5:27100")]
    public void Settings_from_the_older_fields_take_an_IPv6_host(string host, string server)
    {
        var connection = Connection("MONGODB", new JsonObject
        {
            ["hostname"] = host, ["port"] = 27100, ["username"] = "reader", ["password"] = Password, ["database_name"] = "sales",
        });

        Assert.Equal(server, MongoDbDriver.Settings(connection).Server.ToString());
    }

    [Fact]
    public async Task A_source_on_an_IPv6_host_is_tested_discovered_and_listed_by_MCP_without_a_500()
    {
        // Issue #12: the fields form with an IPv6 host threw an ArgumentException out of the driver (500s).
        var port = ClosedIPv6Port();
        Assert.SkipWhen(port is null, "No IPv6 loopback here.");
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Connectivity:TestTimeoutSeconds"] = "3" });
        var org = await own.NewOrganizationAsync();
        var body = FieldsBody("::1", port.Value);
        var linkLocal = FieldsBody("fe80::1", 27017);
        var id = await org.Http.CreateSourceAsync(body);

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", body).Expect(HttpStatusCode.OK);
        var refused = await org.Http.PostJsonAsync("/api/v1/sources/test/", linkLocal).Expect(HttpStatusCode.OK);
        var stored = await org.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "").Expect(HttpStatusCode.OK);
        var discovery = await org.Http.GetAsync($"/api/v1/sources/{id}/schemas/").Expect(HttpStatusCode.BadGateway);
        await using var mcp = await McpKit.ConnectAsync(own, org.Key);
        var (code, message) = (await mcp.CallAsync("list_schemas", new() { ["source_id"] = id })).Error();

        Reports.AssertFailedAt(report, "connect", FailureCodes.PortClosed);
        Reports.AssertFailedAt(stored, "connect", FailureCodes.PortClosed);
        Reports.AssertFailedAt(refused, "egress", FailureCodes.EgressDenied);
        Assert.Equal(FailureCodes.PortClosed, discovery["code"]!.GetValue<string>());
        Assert.Equal(FailureCodes.PortClosed, code);
        own.AssertNoSecrets([report.Compact() + stored.Compact() + discovery.Compact() + message], Password);
    }

    [Fact]
    public void An_srv_string_is_read_without_a_dns_lookup()
    {
        var connection = Connection("MONGODB", new JsonObject { ["connection_string"] = $"mongodb+srv://reader:{Password}@cluster0.example.net/sales" });

        var settings = MongoDbDriver.Settings(connection);
        Assert.Equal(ConnectionStringScheme.MongoDBPlusSrv, settings.Scheme);
        Assert.Equal("cluster0.example.net", settings.Server.Host);
    }

    [Fact]
    public void A_string_the_driver_refuses_gives_a_message_without_it()
    {
        var connection = Connection("MONGODB", new JsonObject { ["connection_string"] = $"mongodb://reader:{Password}@db.example.com/?w=majority&journal=perhaps" });

        var failure = Assert.Throws<ConnectivityException>(() => MongoDbDriver.Settings(connection));
        Assert.Equal(FailureCodes.DriverError, failure.Code);
        Assert.DoesNotContain(Password, failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("db.example.com", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Driver_exceptions_map_to_stable_codes()
    {
        var id = new ConnectionId(new ServerId(new ClusterId(), new DnsEndPoint("db.example.com", 27017)));
        Assert.Equal(FailureCodes.AuthFailed, MongoDbDriver.Map(new MongoAuthenticationException(id, "Unable to authenticate using sasl protocol mechanism SCRAM-SHA-256.")).Code);
        Assert.Equal(FailureCodes.InsufficientPrivilege, MongoDbDriver.Map(Command(id, 13, "Unauthorized")).Code);
        Assert.Equal(FailureCodes.DatabaseNotFound, MongoDbDriver.Map(Command(id, 26, "NamespaceNotFound")).Code);
        Assert.Equal(FailureCodes.AuthFailed, MongoDbDriver.Map(Command(id, 18, "AuthenticationFailed")).Code);
        Assert.Equal(FailureCodes.DriverError, MongoDbDriver.Map(Command(id, 2, "BadValue")).Code);
        Assert.Equal(FailureCodes.AuthFailed, MongoDbDriver.Map(new MongoConnectionException(id, "opening", new MongoAuthenticationException(id, "bad"))).Code);

        var tls = MongoDbDriver.Map(new MongoConnectionException(id, "opening", new AuthenticationException("The remote certificate is invalid")));
        Assert.Equal(FailureCodes.TlsFailed, tls.Code);
        Assert.Equal("tls", tls.Step);
        Assert.Equal(FailureCodes.PortClosed, MongoDbDriver.Map(new MongoConnectionException(id, "opening", new SocketException((int)SocketError.ConnectionRefused))).Code);
    }

    [Fact]
    public void A_server_selection_timeout_is_explained_by_what_refused_the_connection()
    {
        var id = new ConnectionId(new ServerId(new ClusterId(), new DnsEndPoint("db.example.com", 27017)));
        var selection = new TimeoutException("A timeout occurred after 3000ms selecting a server.");

        Assert.Equal(FailureCodes.Timeout, MongoDbDriver.Map(selection).Code);
        Assert.Equal(FailureCodes.EgressDenied,
            MongoDbDriver.Map(selection, new ConnectivityException(FailureCodes.EgressDenied, "not allowed")).Code);
        Assert.Equal(FailureCodes.TlsFailed,
            MongoDbDriver.Map(selection, null, new MongoConnectionException(id, "heartbeat", new AuthenticationException("untrusted root"))).Code);
        Assert.Equal(FailureCodes.Timeout,
            MongoDbDriver.Map(selection, null, new MongoConnectionException(id, "heartbeat", new TimeoutException("read"))).Code);
    }

    [Fact]
    public async Task The_egress_proxy_refuses_metadata_addresses_and_relays_allowed_ones()
    {
        await using var proxy = new EgressProxy(Network());

        var (denied, _) = await SocksConnectAsync(proxy.Port, IPAddress.Parse("169.254.169.254"), 80);
        Assert.Equal(2, denied);
        Assert.Equal(FailureCodes.EgressDenied, proxy.LastFailure?.Code);

        var (closed, _) = await SocksConnectAsync(proxy.Port, IPAddress.Loopback, Loopback.ClosedPort());
        Assert.Equal(5, closed);
        Assert.Equal(FailureCodes.PortClosed, proxy.LastFailure?.Code);

        using var echo = new TcpListener(IPAddress.Loopback, 0);
        echo.Start();
        var serving = Task.Run(async () =>
        {
            using var peer = await echo.AcceptSocketAsync();
            var buffer = new byte[5];
            await peer.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
            await peer.SendAsync(buffer.AsMemory(), SocketFlags.None);
        });
        var (ok, stream) = await SocksConnectAsync(proxy.Port, IPAddress.Loopback, ((IPEndPoint)echo.LocalEndpoint).Port);
        Assert.Equal(0, ok);
        using (stream)
        {
            await stream!.WriteAsync("hello"u8.ToArray());
            var answer = new byte[5];
            await stream.ReadExactlyAsync(answer);
            Assert.Equal("hello"u8.ToArray(), answer);
        }

        await serving;
        Assert.Equal(1, proxy.Connections);
    }

    [Fact]
    public async Task The_real_driver_connects_through_the_egress_proxy()
    {
        // Discovery checks the seeds, then the driver's own connection goes through the proxy,
        // which finds the port closed: the cause is reported, not the driver's generic timeout.
        var driver = new MongoDbDriver(Network());
        var connection = Connection("MONGODB", new JsonObject { ["connection_string"] = $"mongodb://reader:{Password}@127.0.0.1:{Loopback.ClosedPort()}/sales" });
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(3));

        var failure = await Assert.ThrowsAsync<ConnectivityException>(() => driver.ListSchemasAsync(connection, deadline.Token));
        Assert.Equal(FailureCodes.PortClosed, failure.Code);
    }

    [Fact]
    public async Task A_closed_port_is_port_closed()
    {
        var org = await app.NewOrganizationAsync();
        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", StringBody($"127.0.0.1:{Loopback.ClosedPort()}")).Expect(HttpStatusCode.OK);

        Assert.False(report["ok"]!.GetValue<bool>());
        Assert.Equal("ok", Status(report, "egress"));
        Assert.Equal(FailureCodes.PortClosed, Code(report, "connect"));
        Assert.Equal("skipped", Status(report, "authenticate"));
        app.AssertNoSecrets([report.Compact()], Password);
    }

    [Fact]
    public async Task A_server_that_never_answers_times_out_within_the_deadline()
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Connectivity:TestTimeoutSeconds"] = "3" });
        var org = await own.NewOrganizationAsync();
        using var silent = LoopbackListener.Silent();

        var clock = Stopwatch.StartNew();
        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", new JsonObject
        {
            ["type"] = "MONGODB", ["hostname"] = "127.0.0.1", ["port"] = silent.Port, ["username"] = "reader", ["password"] = Password, ["database_name"] = "sales",
        }.ToJsonString()).Expect(HttpStatusCode.OK);
        clock.Stop();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal("ok", Status(report, "connect"));
        Assert.Equal("authenticate", Failed(report));
        Assert.Equal(FailureCodes.Timeout, Code(report, "authenticate"));
        own.AssertNoSecrets([report.Compact()], Password);
    }

    [Fact]
    public async Task An_untrusted_certificate_is_tls_failed()
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Connectivity:TestTimeoutSeconds"] = "5" });
        var org = await own.NewOrganizationAsync();
        using var tls = LoopbackListener.UntrustedTls();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", StringBody($"127.0.0.1:{tls.Port}", "&tls=true")).Expect(HttpStatusCode.OK);

        Assert.True(Failed(report) == "tls", report.Compact());
        Assert.Equal(FailureCodes.TlsFailed, Code(report, "tls"));
        own.AssertNoSecrets([report.Compact()], Password);
    }

    [Fact]
    public async Task A_metadata_address_is_refused_before_any_connection()
    {
        var org = await app.NewOrganizationAsync();
        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", StringBody("169.254.169.254:27017")).Expect(HttpStatusCode.OK);

        Assert.Equal(FailureCodes.EgressDenied, Code(report, "egress"));
        Assert.Equal("skipped", Status(report, "connect"));
        Assert.Equal("skipped", Status(report, "authenticate"));
        app.AssertNoSecrets([report.Compact()], Password);
    }

    [Fact]
    public async Task A_test_that_runs_out_of_time_after_a_second_host_was_refused_fails_at_the_step_it_was_on()
    {
        // Issue #12: ok false with every step ok or skipped, the refusal recorded under egress, which had passed for the seed.
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Connectivity:TestTimeoutSeconds"] = "4" });
        var org = await own.NewOrganizationAsync();
        using var silent = LoopbackListener.Silent();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", StringBody($"127.0.0.1:{silent.Port},169.254.169.254:80")).Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "authenticate", FailureCodes.EgressDenied);
        Assert.Equal("ok", Status(report, "egress"));
        Assert.Equal("ok", Status(report, "connect"));
        own.AssertNoSecrets([report.Compact()], Password);
    }

    [Fact]
    public async Task Discovery_refuses_a_metadata_host_among_several()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(StringBody($"127.0.0.1:{Loopback.ClosedPort()},169.254.169.254:27017"));

        var failure = await org.Http.GetAsync($"/api/v1/sources/{id}/schemas/").Expect(HttpStatusCode.BadGateway);

        Assert.Equal(FailureCodes.EgressDenied, failure["code"]!.GetValue<string>());
        app.AssertNoSecrets([failure.Compact()], Password);
    }

    private static string FieldsBody(string host, int port) => new JsonObject
    {
        ["type"] = "MONGODB", ["hostname"] = host, ["port"] = port, ["username"] = "reader", ["password"] = Password, ["database_name"] = "sales",
    }.ToJsonString();

    /// <summary>A port on ::1 with nothing listening, or null without an IPv6 loopback.</summary>
    private static int? ClosedIPv6Port()
    {
        try
        {
            return Loopback.ClosedPort(IPAddress.IPv6Loopback);
        }
        catch (SocketException)
        {
            return null;
        }
    }

    private static MongoCommandException Command(ConnectionId id, int code, string name) =>
        new(id, name, new BsonDocument("ping", 1), new BsonDocument { { "ok", 0 }, { "code", code }, { "codeName", name }, { "errmsg", name } });

    private static string StringBody(string hosts, string options = "") => new JsonObject
    {
        ["type"] = "MONGODB", ["connection_string"] = $"mongodb://reader:{Password}@{hosts}/sales?authSource=admin{options}",
    }.ToJsonString();

    /// <summary>A SOCKS5 CONNECT by hand; the reply code and, when it is 0, the open tunnel.</summary>
    private static async Task<(int Code, NetworkStream? Stream)> SocksConnectAsync(int proxyPort, IPAddress target, int port)
    {
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, proxyPort);
        var stream = client.GetStream();
        await stream.WriteAsync(new byte[] { 5, 1, 0 });
        var choice = new byte[2];
        await stream.ReadExactlyAsync(choice);
        Assert.Equal(new byte[] { 5, 0 }, choice);
        await stream.WriteAsync((byte[])[5, 1, 0, 1, .. target.GetAddressBytes(), (byte)(port >> 8), (byte)port]);
        var reply = new byte[10];
        await stream.ReadExactlyAsync(reply);
        if (reply[1] != 0)
        {
            client.Dispose();
            return (reply[1], null);
        }

        return (0, stream);
    }
}
