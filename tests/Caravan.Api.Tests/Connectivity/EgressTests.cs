using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>
/// The egress policy: which addresses Caravan connects to on a user's behalf, checked on the address
/// it then connects to. Listeners record every connection, to prove that a refused one was never made.
/// </summary>
public sealed class EgressTests(CaravanApp app)
{
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(300);

    // ---- built-in refusals ----

    [Theory]
    [InlineData("169.254.169.254")]
    [InlineData("169.254.0.1")]
    [InlineData("[fe80::1]")]
    [InlineData("fe80::1")]
    [InlineData("0.0.0.0")]
    [InlineData("::")]
    [InlineData("::ffff:169.254.169.254")]
    [InlineData("100.100.100.200")]
    [InlineData("fd00:ec2::254")]
    public async Task A_metadata_or_unspecified_address_is_egress_denied(string host)
    {
        var org = await app.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Pg.Body(host, 5432)).Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "egress", FailureCodes.EgressDenied);
        Assert.Equal("ok", Reports.Status(report, "resolve"));
        Assert.Equal(Reports.Steps, Reports.Names(report));
    }

    /// <summary>The addresses of issue #12 that reached connect, by every driver that takes a host.</summary>
    public static readonly TheoryData<string, string> MetadataAddressesByFamily = new(
        from family in new[] { "postgres", "mysql", "mssql", "clickhouse", "mongodb", "databricks" }
        from host in new[]
        {
            "fd00:ec2::23", "fd20:ce::254", "168.63.129.16", "192.0.0.192", "::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::",
            "[64:ff9b::a9fe:a9fe]", "::ffff:0:a9fe:a9fe", "2001:0:4136:e378:8000:63bf:5601:5601", "64:ff9b:1:a9fe:a9:fe00::",
        }
        select (family, host));

    [Theory]
    [MemberData(nameof(MetadataAddressesByFamily))]
    public async Task A_metadata_address_or_an_IPv6_form_of_one_is_egress_denied_by_every_driver(string family, string host)
    {
        var org = await app.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", FamilyBody(family, host)).Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "egress", FailureCodes.EgressDenied);
        Assert.Equal("ok", Reports.Status(report, "resolve"));
        Assert.Equal("skipped", Reports.Status(report, "connect"));
    }

    [Theory]
    [InlineData("postgres")]
    [InlineData("mysql")]
    [InlineData("mssql")]
    [InlineData("clickhouse")]
    [InlineData("mongodb")]
    public async Task An_IPv6_literal_host_is_connected_to_by_every_driver(string family)
    {
        using var listener = TryListen(IPAddress.IPv6Loopback);
        Assert.SkipWhen(listener is null, "No IPv6 loopback here.");
        var org = await app.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", FamilyBody(family, "::1", listener.Port)).Expect(HttpStatusCode.OK);
        await Task.Delay(Settle);

        Assert.Equal("ok", Reports.Status(report, "connect"));
        Assert.Contains(listener.Arrivals, a => a.Address.Equals(IPAddress.IPv6Loopback));
    }

    // ---- the policy itself: which addresses an IPv6 address carries ----

    [Theory]
    [InlineData("::ffff:169.254.169.254", "169.254.169.254")]
    [InlineData("::169.254.169.254", "169.254.169.254")]
    [InlineData("::ffff:0:169.254.169.254", "169.254.169.254")]
    [InlineData("64:ff9b::169.254.169.254", "169.254.169.254")]
    [InlineData("64:ff9b:1::a9fe:a9fe", "169.254.169.254")]
    [InlineData("64:ff9b:1:a9fe:a9:fe00::", "169.254.169.254")]
    [InlineData("64:ff9b:1:0:a9:fea9:fe00:0", "169.254.169.254")]
    [InlineData("2002:a9fe:a9fe:1::5", "169.254.169.254")]
    [InlineData("2001:0:a9fe:a9fe::1", "169.254.169.254")]
    [InlineData("2001:0:4136:e378:8000:63bf:5601:5601", "169.254.169.254")]
    [InlineData("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45")]
    [InlineData("fd12:3456::5efe:169.254.169.254", "169.254.169.254")]
    [InlineData("2001:db8::200:5efe:a9fe:a9fe", "169.254.169.254")]
    public void An_IPv6_address_is_checked_as_each_IPv4_address_it_carries(string address, string carried)
    {
        Assert.Contains(IPAddress.Parse(carried), EgressPolicy.Forms(IPAddress.Parse(address)));
        Assert.Equal(carried != "169.254.169.254", Policy().Allows(IPAddress.Parse(address)));
    }

    [Theory]
    [InlineData("::1")]
    [InlineData("127.0.0.1")]
    [InlineData("10.1.2.3")]
    [InlineData("192.168.1.20")]
    [InlineData("fd12:3456::1")]
    [InlineData("2001:db8::1")]
    [InlineData("::ffff:10.1.2.3")]
    [InlineData("64:ff9b::198.51.100.7")]
    [InlineData("64:ff9b:1:c633:64:700::")]
    [InlineData("2002:c633:6407::1")]
    [InlineData("192.0.1.1")]
    [InlineData("fd00:ec3::254")]
    public void Loopback_private_and_public_addresses_and_their_IPv6_forms_are_allowed_by_default(string address)
    {
        Assert.True(Policy().Allows(IPAddress.Parse(address)), address);
    }

    [Theory]
    [InlineData("::")]
    [InlineData("0.0.0.0")]
    [InlineData("0.1.2.3")]
    [InlineData("192.0.0.192")]
    [InlineData("192.0.0.8")]
    [InlineData("168.63.129.16")]
    [InlineData("100.100.100.200")]
    [InlineData("fd00:ec2::23")]
    [InlineData("fd00:ec2::254")]
    [InlineData("fd20:ce::254")]
    [InlineData("fe80::a9fe:a9fe")]
    [InlineData("::ffff:168.63.129.16")]
    [InlineData("64:ff9b::c000:c0")]
    public void Metadata_agent_and_unspecified_addresses_are_denied_by_default(string address)
    {
        Assert.False(Policy().Allows(IPAddress.Parse(address)), address);
    }

    [Fact]
    public void Deny_and_allow_see_an_embedded_form_as_its_IPv4_address_and_as_itself()
    {
        var denyPrivate = Policy(deny: "10.0.0.0/8");
        var allowMetadata = Policy(allow: "169.254.169.254");
        var allowNat64 = Policy(allow: "64:ff9b::/96");
        var denyNat64 = Policy(deny: "64:ff9b::/96");

        Assert.False(denyPrivate.Allows(IPAddress.Parse("64:ff9b::10.0.0.5")));
        Assert.False(denyPrivate.Allows(IPAddress.Parse("2002:a00:5::1")));
        Assert.True(allowMetadata.Allows(IPAddress.Parse("64:ff9b::169.254.169.254")));
        Assert.False(allowNat64.Allows(IPAddress.Parse("64:ff9b::169.254.169.254")));
        Assert.False(denyNat64.Allows(IPAddress.Parse("64:ff9b::198.51.100.7")));
        Assert.True(denyNat64.Allows(IPAddress.Parse("198.51.100.7")));
    }

    [Theory]
    [InlineData("metadata.google.internal")]
    [InlineData("METADATA.GOOGLE.INTERNAL.")]
    [InlineData("metadata")]
    [InlineData("instance-data.ec2.internal")]
    public async Task A_cloud_metadata_name_is_egress_denied_without_being_resolved(string host)
    {
        var org = await app.NewOrganizationAsync();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Pg.Body(host, 80)).Expect(HttpStatusCode.OK);

        Reports.AssertFailedAt(report, "egress", FailureCodes.EgressDenied);
    }

    [Fact]
    public async Task A_stored_metadata_source_is_refused_by_test_discovery_and_verify()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Pg.Body("169.254.169.254", 80));
        var before = await app.StoredSourceAsync(id);

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);
        var schemas = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.BadGateway);
        var verify = await org.Http.PatchJsonAsync($"{SourceRoutes.Url(id, "update-config")}?verify=true", """{"selected_schemas": ["public"]}""")
            .Expect(HttpStatusCode.BadGateway);

        Reports.AssertFailedAt(report, "egress", FailureCodes.EgressDenied);
        PostgresConnectivityTests.AssertFailureBody(schemas, FailureCodes.EgressDenied);
        PostgresConnectivityTests.AssertFailureBody(verify, FailureCodes.EgressDenied);
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task Loopback_is_allowed_by_default()
    {
        var org = await app.NewOrganizationAsync();
        using var listener = LoopbackListener.HangingUp();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Pg.Body("127.0.0.1", listener.Port)).Expect(HttpStatusCode.OK);

        Assert.Equal("ok", Reports.Status(report, "egress"));
        Assert.Equal("ok", Reports.Status(report, "connect"));
        Assert.Contains(listener.Arrivals, a => a.Address.Equals(IPAddress.Loopback));
    }

    // ---- configured refusals: no connection is made ----

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("localhost")]
    [InlineData("::ffff:127.0.0.1")]
    public async Task A_denied_address_is_never_connected_to(string host)
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Egress:Deny"] = "127.0.0.0/8, ::1/128" });
        var org = await own.NewOrganizationAsync();
        using var listener = LoopbackListener.Silent();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Pg.Body(host, listener.Port)).Expect(HttpStatusCode.OK);
        await Task.Delay(Settle);

        Reports.AssertFailedAt(report, "egress", FailureCodes.EgressDenied);
        Assert.Empty(listener.Arrivals);
    }

    [Fact]
    public async Task Discovery_and_verify_of_a_denied_address_never_connect()
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Egress:Deny"] = "127.0.0.0/8" });
        var org = await own.NewOrganizationAsync();
        using var listener = LoopbackListener.Silent();
        var id = await org.Http.CreateSourceAsync(Pg.Body("127.0.0.1", listener.Port));

        var schemas = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.BadGateway);
        var verify = await org.Http.PatchJsonAsync($"{SourceRoutes.Url(id, "update-config")}?verify=true", """{"selected_schemas": ["public"]}""")
            .Expect(HttpStatusCode.BadGateway);
        await Task.Delay(Settle);

        PostgresConnectivityTests.AssertFailureBody(schemas, FailureCodes.EgressDenied);
        PostgresConnectivityTests.AssertFailureBody(verify, FailureCodes.EgressDenied);
        Assert.Empty(listener.Arrivals);
    }

    [Fact]
    public async Task Allow_wins_over_deny()
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?>
        {
            ["Caravan:Egress:Deny"] = "127.0.0.0/8",
            ["Caravan:Egress:Allow"] = "127.0.0.1/32",
        });
        var org = await own.NewOrganizationAsync();
        using var listener = LoopbackListener.HangingUp();

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Pg.Body("127.0.0.1", listener.Port)).Expect(HttpStatusCode.OK);

        Assert.Equal("ok", Reports.Status(report, "egress"));
        Assert.Equal("ok", Reports.Status(report, "connect"));
        Assert.Contains(listener.Arrivals, a => a.Address.Equals(IPAddress.Loopback));
    }

    [Fact]
    public async Task Allow_can_open_a_built_in_refusal_and_a_single_address_counts_as_a_range()
    {
        // 0.0.0.0 is refused by default; allowed, a connection to it reaches the local listener.
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Egress:Allow"] = "0.0.0.0" });
        var org = await own.NewOrganizationAsync();
        using var listener = LoopbackListener.HangingUp(IPAddress.Any);

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Pg.Body("0.0.0.0", listener.Port)).Expect(HttpStatusCode.OK);

        Assert.Equal("ok", Reports.Status(report, "egress"));
        Assert.Equal("ok", Reports.Status(report, "connect"));
    }

    // ---- the address checked is the address connected to ----

    [Fact]
    public async Task With_v6_loopback_denied_a_name_is_connected_on_its_allowed_address_only()
    {
        using var pair = LoopbackListener.OnBothLoopbacks();
        Assert.SkipWhen(pair is null, "No IPv6 loopback here.");
        var (v4, v6) = pair;

        var report = await TestLocalhostAsync(v4.Port, deny: "::1/128");

        Assert.Equal("ok", Reports.Status(report, "egress"));
        Assert.Equal("ok", Reports.Status(report, "connect"));
        Assert.NotEmpty(v4.Arrivals);
        Assert.Empty(v6.Arrivals);
    }

    [Fact]
    public async Task With_v4_loopback_denied_a_name_is_connected_on_v6_if_it_has_it_and_else_not_at_all()
    {
        using var pair = LoopbackListener.OnBothLoopbacks();
        Assert.SkipWhen(pair is null, "No IPv6 loopback here.");
        var (v4, v6) = pair;
        var localhostHasV6 = (await Dns.GetHostAddressesAsync("localhost")).Contains(IPAddress.IPv6Loopback);

        var report = await TestLocalhostAsync(v4.Port, deny: "127.0.0.0/8");

        Assert.Empty(v4.Arrivals);
        if (localhostHasV6)
        {
            Assert.Equal("ok", Reports.Status(report, "connect"));
            Assert.NotEmpty(v6.Arrivals);
        }
        else
        {
            Reports.AssertFailedAt(report, "egress", FailureCodes.EgressDenied);
            Assert.Empty(v6.Arrivals);
        }
    }

    [Fact]
    public async Task Every_connection_of_a_test_goes_to_the_checked_address()
    {
        // The probe and the driver's login both arrive, and both on the address that was checked.
        using var pair = LoopbackListener.OnBothLoopbacks();
        Assert.SkipWhen(pair is null, "No IPv6 loopback here.");
        var (v4, v6) = pair;

        var report = await TestLocalhostAsync(v4.Port, deny: "::1/128");

        Assert.Equal("ok", Reports.Status(report, "connect"));
        Assert.NotEqual("skipped", Reports.Status(report, "authenticate"));
        Assert.True(v4.Arrivals.Count >= 2, $"expected the probe and the login on 127.0.0.1, saw {v4.Arrivals.Count}");
        Assert.All(v4.Arrivals, a => Assert.Equal(IPAddress.Loopback, a.Address));
        Assert.Empty(v6.Arrivals);
    }

    // ---- configuration ----

    [Theory]
    [InlineData("Caravan:Egress:Deny", "Caravan__Egress__Deny", "10.0.0.0/33")]
    [InlineData("Caravan:Egress:Deny", "Caravan__Egress__Deny", "10.0.0.0/8, not-a-range")]
    [InlineData("Caravan:Egress:Allow", "Caravan__Egress__Allow", "fd00::/129")]
    public async Task An_invalid_range_stops_the_start_with_a_message_naming_the_setting(string key, string setting, string value)
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { [key] = value });

        var failure = await Record.ExceptionAsync(async () =>
        {
            var org = await own.NewOrganizationAsync();
            using var response = await org.Http.PostJsonAsync("/api/v1/sources/test/", Pg.Body("127.0.0.1", Loopback.ClosedPort()));
        });

        // Program reports a start-up failure (and the host logs it); the factory then only sees a stopped host.
        Assert.True(failure is not null, "Caravan started and answered with an invalid egress range.");
        Assert.True(failure.ToString().Contains(setting, StringComparison.Ordinal) || own.Logs.Lines.Any(l => l.Contains(setting, StringComparison.Ordinal)),
            $"Neither the failure nor a log line names {setting}: {failure}");
    }

    [Fact]
    public async Task The_real_program_refuses_to_start_with_an_invalid_range()
    {
        var directory = CaravanApp.NewDataDirectory();
        var settings = TestStore.NewStoreSettings(directory);
        settings["Caravan:Secrets:MasterKeyFile"] = Path.Combine(directory, "master.key");
        var migrated = await CaravanProcess.RunAsync(settings, directory, "migrate");
        Assert.True(migrated.ExitCode == 0, migrated.Error);
        settings["Caravan:Egress:Deny"] = "10.0.0.0/33";
        var port = Loopback.ClosedPort();

        using var process = new Process { StartInfo = CaravanProcess.Start(settings, directory, "--urls", $"http://127.0.0.1:{port}") };
        process.Start();
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        var started = await AnswersHealthAsync(process, port, TimeSpan.FromSeconds(30));
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }

        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.False(started, "Caravan started with Caravan__Egress__Deny=10.0.0.0/33.");
        Assert.NotEqual(0, process.ExitCode);
        Assert.Contains("Caravan__Egress__Deny", await output + await error, StringComparison.Ordinal);
    }

    private static LoopbackListener? TryListen(IPAddress address)
    {
        try
        {
            return LoopbackListener.HangingUp(address);
        }
        catch (System.Net.Sockets.SocketException)
        {
            return null;
        }
    }

    /// <summary>A connection test of localhost at <paramref name="port"/> by a Caravan that denies <paramref name="deny"/>, once its connections have arrived.</summary>
    private static async Task<JsonNode> TestLocalhostAsync(int port, string deny)
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Egress:Deny"] = deny });
        var org = await own.NewOrganizationAsync();
        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Pg.Body("localhost", port)).Expect(HttpStatusCode.OK);
        await Task.Delay(Settle);
        return report;
    }

    private static EgressPolicy Policy(string? deny = null, string? allow = null) =>
        new(Microsoft.Extensions.Options.Options.Create(new EgressOptions { Deny = deny, Allow = allow }));

    /// <summary>A create body of <paramref name="family"/> whose host is <paramref name="host"/>.</summary>
    private static string FamilyBody(string family, string host, int port = 5432)
    {
        var bare = host.Trim('[', ']');
        var bracketed = bare.Contains(':', StringComparison.Ordinal) ? $"[{bare}]" : bare;
        JsonObject body = family switch
        {
            "postgres" => JsonNode.Parse(Pg.Body(host, port))!.AsObject(),
            "mysql" or "mssql" => new() { ["type"] = family, ["hostname"] = host, ["port"] = port, ["username"] = "u", ["password"] = "not-the-password", ["database_name"] = "d" },
            "clickhouse" => new() { ["type"] = family, ["host"] = host, ["port"] = port, ["username"] = "u", ["password"] = "not-the-password" },
            "mongodb" => new() { ["type"] = family, ["connection_string"] = $"mongodb://u:not-the-password@{bracketed}:{port}/d" },
            "databricks" => new() { ["type"] = family, ["server_hostname"] = host, ["http_path"] = "/sql/1.0/warehouses/abc", ["access_token"] = "dapi-not-the-token" },
            _ => throw new ArgumentOutOfRangeException(nameof(family)),
        };
        return body.ToJsonString();
    }

    /// <summary>Waits until the process answers /healthz (true) or exits (false).</summary>
    private static async Task<bool> AnswersHealthAsync(Process process, int port, TimeSpan limit)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit && !process.HasExited)
        {
            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/healthz"));
                if (response.IsSuccessStatusCode)
                {
                    return true;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(200);
        }

        return false;
    }
}
