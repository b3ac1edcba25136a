using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Tunnels;

/// <summary>
/// Sources reached through a real SSH bastion (<see cref="Bastion"/>): sshd and the databases run
/// in a network namespace whose only way in is sshd's port, so a database answering at all proves
/// the path went through the bastion, and sshd's log shows each session and each forwarding. Every
/// test names its database by an address of its own (<see cref="Bastion.UniqueTargetHost"/>), so
/// the log lines it counts are its own while other tests run.
/// </summary>
public sealed class SshTunnelTests(CaravanApp app)
{
    [Fact]
    public async Task Postgres_in_the_namespace_is_reached_through_the_bastion_by_test_discovery_and_queries()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var target = Bastion.UniqueTargetHost();
        var org = await app.NewOrganizationAsync();

        // Without the tunnel the database is not there: only sshd's port leads into the namespace.
        var direct = await org.Http.PostJsonAsync("/api/v1/sources/test/", Postgres(target, tunnel: null).ToJsonString()).Expect(HttpStatusCode.OK);
        Assert.Equal("connect", Reports.Failed(direct));

        var id = await org.Http.CreateSourceAsync(Postgres(target, PasswordTunnel()).ToJsonString());
        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);

        Reports.AssertPassed(report, tunnelled: true);
        Assert.Contains(Bastion.HostKeyFingerprint, Reports.Step(report, "ssh_hostkey")["message"]!.GetValue<string>(), StringComparison.Ordinal);
        var answer = await org.Http.QueryAsync(id, "SELECT value FROM marker", HttpStatusCode.OK);
        Assert.Equal(Bastion.Marker, QueryKit.Rows(answer)[0]![0]!.GetValue<string>());
        var schemas = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Contains("public", schemas.ToJsonString(), StringComparison.Ordinal);

        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(target) >= 1, TimeSpan.FromSeconds(5)), Bastion.LogTail());
        // The test, the query and discovery of one configuration share one session.
        Assert.Equal(1, Bastion.SessionsForwardingTo(target));
    }

    [Fact]
    public async Task MariaDb_in_the_namespace_is_reached_through_the_bastion_with_an_ed25519_key()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var target = Bastion.UniqueTargetHost();
        var org = await app.NewOrganizationAsync();
        var tunnel = KeyTunnel(Bastion.Ed25519Key, passphrase: null);
        var body = new JsonObject
        {
            ["type"] = "MYSQL", ["account_name"] = "behind the bastion", ["hostname"] = target, ["port"] = Bastion.MariaDbPort,
            ["username"] = Bastion.MariaDbUser, ["password"] = Bastion.MariaDbPassword, ["database_name"] = Bastion.MarkerDatabase,
            ["ssh_tunnel"] = tunnel,
        };

        var id = await org.Http.CreateSourceAsync(body.ToJsonString());
        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "").Expect(HttpStatusCode.OK);

        Reports.AssertPassed(report, tunnelled: true);
        Assert.Contains("private key", Reports.Step(report, "ssh_auth")["message"]!.GetValue<string>(), StringComparison.Ordinal);
        var answer = await org.Http.QueryAsync(id, "SELECT value FROM marker", HttpStatusCode.OK);
        Assert.Equal(Bastion.Marker, QueryKit.Rows(answer)[0]![0]!.GetValue<string>());
        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(target) >= 1, TimeSpan.FromSeconds(5)), Bastion.LogTail());
    }

    [Fact]
    public async Task Encrypted_rsa_keys_in_openssh_and_pem_form_ecdsa_keys_and_a_pinned_rsa_key_line_all_log_in()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var org = await app.NewOrganizationAsync();
        (JsonObject Tunnel, string Login)[] cases =
        [
            (KeyTunnel(Bastion.RsaKeyEncrypted, Bastion.RsaKeyPassphrase), "private key"),
            (KeyTunnel(Bastion.RsaKeyPem, Bastion.RsaKeyPemPassphrase), "private key"),
            (KeyTunnel(Bastion.EcdsaKey, passphrase: null), "private key"),
            // A pinned key line asks the bastion for that kind of key: its RSA key, not its Ed25519 one.
            (PasswordTunnel(hostKey: Bastion.RsaHostKeyLine), "password"),
        ];

        foreach (var (tunnel, login) in cases)
        {
            var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Postgres(Bastion.UniqueTargetHost(), tunnel).ToJsonString()).Expect(HttpStatusCode.OK);
            Reports.AssertPassed(report, tunnelled: true);
            Assert.Contains(login, Reports.Step(report, "ssh_auth")["message"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        var rsa = await org.Http.PostJsonAsync("/api/v1/sources/test/",
            Postgres(Bastion.UniqueTargetHost(), PasswordTunnel(hostKey: Bastion.RsaHostKeyLine)).ToJsonString()).Expect(HttpStatusCode.OK);
        Assert.Contains(Bastion.RsaHostKeyFingerprint, Reports.Step(rsa, "ssh_hostkey")["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_pinned_host_key_nothing_is_sent_and_the_bastions_fingerprint_is_reported()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var org = await app.NewOrganizationAsync();
        var user = Stranger();
        var tunnel = PasswordTunnel(hostKey: null, user: user);

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Postgres(Bastion.UniqueTargetHost(), tunnel).ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.Equal("ssh_hostkey", Reports.Failed(report));
        Assert.Equal("ssh_hostkey_unknown", Reports.Code(report, "ssh_hostkey"));
        Assert.Contains(Bastion.HostKeyFingerprint, Reports.Step(report, "ssh_hostkey")["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("ok", Reports.Status(report, "ssh_connect"));
        Assert.Equal("skipped", Reports.Status(report, "ssh_auth"));
        await Task.Delay(300);
        Assert.Equal(0, Bastion.AuthAttemptsFor(user));
    }

    [Fact]
    public async Task A_mismatched_host_key_is_refused_before_any_authentication_and_a_wrong_password_fails_at_ssh_auth()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var org = await app.NewOrganizationAsync();
        var user = Stranger();

        // The RSA key's fingerprint is the bastion's, but not of the key it shows first (Ed25519).
        var mismatch = await org.Http.PostJsonAsync("/api/v1/sources/test/",
            Postgres(Bastion.UniqueTargetHost(), PasswordTunnel(hostKey: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", user: user)).ToJsonString())
            .Expect(HttpStatusCode.OK);

        Assert.Equal("ssh_hostkey", Reports.Failed(mismatch));
        Assert.Equal("ssh_hostkey_mismatch", Reports.Code(mismatch, "ssh_hostkey"));
        Assert.Contains(Bastion.HostKeyFingerprint, Reports.Step(mismatch, "ssh_hostkey")["message"]!.GetValue<string>(), StringComparison.Ordinal);
        await Task.Delay(300);
        Assert.Equal(0, Bastion.AuthAttemptsFor(user));

        // The same user name with the right host key does reach sshd's authentication (so the count above can see it).
        var stranger = await org.Http.PostJsonAsync("/api/v1/sources/test/",
            Postgres(Bastion.UniqueTargetHost(), PasswordTunnel(user: user)).ToJsonString()).Expect(HttpStatusCode.OK);
        Assert.Equal("ssh_auth", Reports.Failed(stranger));
        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.AuthAttemptsFor(user) > 0, TimeSpan.FromSeconds(5)), Bastion.LogTail());

        var wrong = PasswordTunnel();
        wrong["password"] = "not-the-password";
        var refused = await org.Http.PostJsonAsync("/api/v1/sources/test/", Postgres(Bastion.UniqueTargetHost(), wrong).ToJsonString()).Expect(HttpStatusCode.OK);
        Assert.Equal("ssh_auth", Reports.Failed(refused));
        Assert.Equal("auth_failed", Reports.Code(refused, "ssh_auth"));
        Assert.DoesNotContain("not-the-password", refused.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Fifty_queries_in_a_row_use_one_ssh_session_and_a_new_configuration_opens_another()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var target = Bastion.UniqueTargetHost();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres(target, PasswordTunnel()).ToJsonString());

        for (var i = 0; i < 50; i++)
        {
            var answer = await org.Http.QueryAsync(id, $"SELECT {i}", HttpStatusCode.OK);
            Assert.Equal(i, QueryKit.Rows(answer)[0]![0]!.GetValue<int>());
        }

        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(target) >= 1, TimeSpan.FromSeconds(5)), Bastion.LogTail());
        Assert.Equal(1, Bastion.SessionsForwardingTo(target));
        var tunnels = app.Services.GetRequiredService<SshTunnels>();
        var before = Assert.Single(tunnels.ForwardedPorts(id));

        // A new key for the tunnel: the old session closes at once, the next query opens another.
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/",
            new JsonObject { ["ssh_tunnel"] = new JsonObject { ["private_key"] = Bastion.Ed25519Key } }.ToJsonString()).Expect(HttpStatusCode.OK);
        Assert.Empty(tunnels.ForwardedPorts(id));
        await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.OK);
        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.SessionsForwardingTo(target) == 2, TimeSpan.FromSeconds(5)), Bastion.LogTail());
        Assert.NotEqual(before, Assert.Single(tunnels.ForwardedPorts(id)));

        // Deleting the source closes its session.
        await org.Http.DeleteAsync($"/api/v1/sources/{id}/").Expect(HttpStatusCode.NoContent);
        Assert.Empty(tunnels.ForwardedPorts(id));
    }

    [Fact]
    public async Task The_forwarded_port_serves_only_caravans_own_connections()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var target = Bastion.UniqueTargetHost();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Postgres(target, PasswordTunnel()).ToJsonString());
        await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.OK);
        var port = Assert.Single(app.Services.GetRequiredService<SshTunnels>().ForwardedPorts(id));
        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(target) >= 1, TimeSpan.FromSeconds(5)), Bastion.LogTail());
        var forwardings = Bastion.ForwardingsTo(target);

        // Another process on this machine that finds the port gets nothing: PostgreSQL's answer to
        // an SSLRequest ('S' or 'N') never comes, and the bastion is not asked to forward.
        Assert.Equal(0, await OutsiderReadsAsync(port));

        // This process's own connection through the same port gets PostgreSQL's answer.
        using (var own = new TcpClient())
        {
            await own.ConnectAsync(IPAddress.Loopback, port);
            var stream = own.GetStream();
            await stream.WriteAsync(SslRequest);
            var answer = new byte[1];
            Assert.Equal(1, await stream.ReadAsync(answer).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Contains(answer[0], "SN"u8.ToArray());
        }

        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(target) == forwardings + 1, TimeSpan.FromSeconds(5)), Bastion.LogTail());
    }

    [Fact]
    public async Task The_egress_policy_checks_the_bastion()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var org = await app.NewOrganizationAsync();
        var tunnel = PasswordTunnel();
        tunnel["host"] = "169.254.169.254";

        var report = await org.Http.PostJsonAsync("/api/v1/sources/test/", Postgres(Bastion.UniqueTargetHost(), tunnel).ToJsonString()).Expect(HttpStatusCode.OK);

        Assert.Equal("egress", Reports.Failed(report));
        Assert.Equal("egress_denied", Reports.Code(report, "egress"));
    }

    [Fact]
    public async Task Sql_server_mongodb_and_clickhouse_sources_connect_through_the_bastion_too()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var org = await app.NewOrganizationAsync();

        // No SQL Server, MongoDB or ClickHouse runs in the namespace: their drivers are sent to its
        // PostgreSQL port, which does not speak their protocol. The bastion's log shows their
        // connections arrived through the tunnel; the database step then fails.
        var clickTarget = Bastion.UniqueTargetHost();
        var click = await org.Http.PostJsonAsync("/api/v1/sources/test/", new JsonObject
        {
            ["type"] = "CLICKHOUSE", ["account_name"] = "behind the bastion", ["host"] = clickTarget, ["port"] = Bastion.PostgresPort,
            ["username"] = "reader", ["password"] = "not-used", ["ssh_tunnel"] = PasswordTunnel(),
        }.ToJsonString()).Expect(HttpStatusCode.OK);
        Assert.Equal("ok", Reports.Status(click, "ssh_forward"));
        Assert.Equal("authenticate", Reports.Failed(click));
        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(clickTarget) >= 1, TimeSpan.FromSeconds(5)), Bastion.LogTail());

        var mongoTarget = Bastion.UniqueTargetHost();
        var mongo = await org.Http.PostJsonAsync("/api/v1/sources/test/", new JsonObject
        {
            ["type"] = "MONGODB", ["account_name"] = "behind the bastion", ["hostname"] = mongoTarget, ["port"] = Bastion.PostgresPort,
            ["username"] = "reader", ["password"] = "not-used", ["database_name"] = "admin", ["ssh_tunnel"] = PasswordTunnel(),
        }.ToJsonString()).Expect(HttpStatusCode.OK);
        Assert.Equal("ok", Reports.Status(mongo, "ssh_forward"));
        Assert.Equal("authenticate", Reports.Failed(mongo));
        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(mongoTarget) >= 1, TimeSpan.FromSeconds(5)), Bastion.LogTail());

        var sqlTarget = Bastion.UniqueTargetHost();
        var sql = await org.Http.PostJsonAsync("/api/v1/sources/test/", new JsonObject
        {
            ["type"] = "MSSQL", ["account_name"] = "behind the bastion", ["hostname"] = sqlTarget, ["port"] = Bastion.PostgresPort,
            ["username"] = "reader", ["password"] = "not-used", ["database_name"] = "master", ["ssh_tunnel"] = PasswordTunnel(),
        }.ToJsonString()).Expect(HttpStatusCode.OK);
        Assert.Equal("ok", Reports.Status(sql, "ssh_forward"));
        Assert.Equal("authenticate", Reports.Failed(sql));
        if (Caravan.Api.Connectors.SqlServer.SqlServerDriver.GlobalizationAvailable)
        {
            // Without culture data SqlClient refuses before it connects (see SqlServerConnectivityTests).
            Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(sqlTarget) >= 1, TimeSpan.FromSeconds(5)), Bastion.LogTail());
        }
    }

    [Fact]
    public async Task No_tunnel_password_key_or_passphrase_reaches_a_response_or_a_log_line()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var org = await app.NewOrganizationAsync();
        var responses = new List<string>();
        var wrong = PasswordTunnel();
        wrong["password"] = "wrong-" + Bastion.Password;
        JsonObject[] tunnels =
        [
            PasswordTunnel(), wrong, PasswordTunnel(hostKey: null), KeyTunnel(Bastion.RsaKeyEncrypted, Bastion.RsaKeyPassphrase),
            KeyTunnel(Bastion.RsaKeyPem, Bastion.RsaKeyPemPassphrase), KeyTunnel(Bastion.Ed25519Key, passphrase: null),
        ];
        foreach (var tunnel in tunnels)
        {
            var body = Postgres(Bastion.UniqueTargetHost(), tunnel).ToJsonString();
            responses.Add((await org.Http.PostJsonAsync("/api/v1/sources/test/", body).Expect(HttpStatusCode.OK)).ToJsonString());
            var id = await org.Http.CreateSourceAsync(body);
            responses.Add((await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/config/", UriKind.Relative)).Expect(HttpStatusCode.OK)).ToJsonString());
            var query = await org.Http.QueryAsync(id, """{"sql": "SELECT 1"}""");
            responses.Add(await query.Content.ReadAsStringAsync());
            responses.Add((await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/revisions/", UriKind.Relative)).Expect(HttpStatusCode.OK)).ToJsonString());
        }

        var logs = string.Join('\n', app.Logs.Lines);
        string[] secrets =
        [
            Bastion.Password, Bastion.RsaKeyPassphrase, Bastion.RsaKeyPemPassphrase,
            .. new[] { Bastion.RsaKeyEncrypted, Bastion.RsaKeyPem, Bastion.Ed25519Key }.Select(KeyBodyLine),
        ];
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(secret, logs, StringComparison.Ordinal);
            Assert.All(responses, response => Assert.DoesNotContain(secret, response, StringComparison.Ordinal));
        }
    }

    /// <summary>A line from the middle of a key's body: what any copy of the key would contain.</summary>
    private static string KeyBodyLine(string key)
    {
        var lines = key.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => !l.StartsWith("-----", StringComparison.Ordinal) && !l.Contains(':', StringComparison.Ordinal)).ToArray();
        return lines[lines.Length / 2];
    }

    /// <summary>PostgreSQL's SSLRequest: a length of 8 and the code 80877103.</summary>
    private static readonly byte[] SslRequest = [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F];

    /// <summary>How many bytes another process reads from the port after sending an SSLRequest (within 3 s).</summary>
    private static async Task<int> OutsiderReadsAsync(int port)
    {
        var script = $"exec 3<>/dev/tcp/127.0.0.1/{port} || exit 9; printf '\\000\\000\\000\\010\\004\\322\\026\\057' >&3; timeout 3 head -c 1 <&3 | wc -c";
        using var process = Process.Start(new ProcessStartInfo("bash", ["-c", script]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(0, process.ExitCode);
        return int.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A user name no one has: sshd logs any authentication attempt made with it.</summary>
    private static string Stranger() => "stranger-" + Guid.NewGuid().ToString("N")[..12];

    internal static JsonObject Postgres(string target, JsonObject? tunnel)
    {
        var body = new JsonObject
        {
            ["type"] = "POSTGRES", ["account_name"] = "behind the bastion", ["hostname"] = target, ["port"] = Bastion.PostgresPort,
            ["username"] = Bastion.PostgresUser, ["password"] = Bastion.PostgresPassword, ["database_name"] = Bastion.MarkerDatabase,
        };
        if (tunnel is not null)
        {
            body["ssh_tunnel"] = tunnel;
        }

        return body;
    }

    internal static JsonObject PasswordTunnel(string? hostKey = "", string? user = null)
    {
        var tunnel = new JsonObject
        {
            ["host"] = Bastion.SshHost, ["port"] = Bastion.SshPort, ["username"] = user ?? Bastion.User, ["password"] = Bastion.Password,
        };
        if (hostKey is not null)
        {
            tunnel["host_key"] = hostKey.Length == 0 ? Bastion.HostKeyFingerprint : hostKey;
        }

        return tunnel;
    }

    private static JsonObject KeyTunnel(string key, string? passphrase)
    {
        var tunnel = new JsonObject
        {
            ["host"] = Bastion.SshHost, ["port"] = Bastion.SshPort, ["username"] = Bastion.User, ["private_key"] = key,
            ["host_key"] = Bastion.HostKeyFingerprint,
        };
        if (passphrase is not null)
        {
            tunnel["private_key_passphrase"] = passphrase;
        }

        return tunnel;
    }
}

/// <summary>A session nothing uses closes after the idle limit; one a pooled connection goes through stays.</summary>
public sealed class SshTunnelIdleTests
{
    [Fact]
    public async Task An_unused_session_closes_after_the_idle_limit_and_a_used_one_stays_open()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        await using var app = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Connectivity:SshIdleSeconds"] = "2" });
        var org = await app.NewOrganizationAsync();
        var tunnels = app.Services.GetRequiredService<SshTunnels>();

        // The test of an unsaved configuration leaves a session with no connection through it.
        Reports.AssertPassed(await org.Http.PostJsonAsync("/api/v1/sources/test/",
            SshTunnelTests.Postgres(Bastion.UniqueTargetHost(), SshTunnelTests.PasswordTunnel()).ToJsonString()).Expect(HttpStatusCode.OK), tunnelled: true);
        Assert.Equal(1, tunnels.OpenSessions);
        Assert.True(await Bastion.WaitForLogAsync(() => tunnels.OpenSessions == 0, TimeSpan.FromSeconds(15)), "The unused session was not closed.");

        // A query leaves a pooled connection through its source's session (idle for 60 s in the
        // pool): the session outlives several idle limits.
        var id = await org.Http.CreateSourceAsync(SshTunnelTests.Postgres(Bastion.UniqueTargetHost(), SshTunnelTests.PasswordTunnel()).ToJsonString());
        await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.OK);
        var port = Assert.Single(tunnels.ForwardedPorts(id));
        await Task.Delay(TimeSpan.FromSeconds(6));
        Assert.Equal(port, Assert.Single(tunnels.ForwardedPorts(id)));
    }
}

/// <summary>The bastion restarted between two queries: the second reopens the session and succeeds.</summary>
[Collection(Bastion.RestartCollection)]
public sealed class SshTunnelRestartTests(CaravanApp app)
{
    [Fact]
    public async Task A_query_after_the_bastion_restarted_reopens_the_session_and_succeeds()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var target = Bastion.UniqueTargetHost();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(SshTunnelTests.Postgres(target, SshTunnelTests.PasswordTunnel()).ToJsonString());
        await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.OK);

        await Bastion.RestartAsync();

        var answer = await org.Http.QueryAsync(id, "SELECT value FROM marker", HttpStatusCode.OK);
        Assert.Equal(Bastion.Marker, QueryKit.Rows(answer)[0]![0]!.GetValue<string>());
        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.SessionsForwardingTo(target) == 2, TimeSpan.FromSeconds(5)), Bastion.LogTail());
    }
}
