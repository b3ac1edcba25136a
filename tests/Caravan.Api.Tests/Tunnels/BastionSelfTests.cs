using System.Net.Sockets;
using System.Text;
using Caravan.Api.Tests.Infrastructure;
using MySqlConnector;
using Npgsql;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace Caravan.Api.Tests.Tunnels;

/// <summary>
/// The bastion the tunnel tests go through (<see cref="Bastion"/>), checked with SSH.NET as a plain
/// client: it takes every kind of login the tests use, its host keys are the ones its env file
/// names, only it leads to the databases holding the marker, and its log counts sessions,
/// forwardings and authentication attempts the way the tunnel tests rely on. These prove the
/// environment, not Caravan.
/// </summary>
public sealed class BastionSelfTests
{
    public static TheoryData<string> Logins => ["password", "ed25519", "rsa-openssh-encrypted", "rsa-pem-encrypted", "ecdsa"];

    [Theory]
    [MemberData(nameof(Logins))]
    public async Task Each_login_reaches_postgres_in_the_namespace_through_one_forwarding(string login)
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var host = Bastion.UniqueTargetHost();
        using var client = await BastionKit.ConnectAsync(login);
        using var forwarded = BastionKit.Forward(client, host, Bastion.PostgresPort);

        var (marker, serverAddress) = await BastionKit.PostgresMarkerAsync(forwarded);

        Assert.Equal(Bastion.Marker, marker);
        Assert.Equal(host, serverAddress);
        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(host) == 1, TimeSpan.FromSeconds(5)), Bastion.LogTail());
        Assert.Equal(1, Bastion.SessionsForwardingTo(host));
    }

    [Fact]
    public async Task MariaDb_in_the_namespace_holds_the_same_marker()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var host = Bastion.UniqueTargetHost();
        using var client = await BastionKit.ConnectAsync("ed25519");
        using var forwarded = BastionKit.Forward(client, host, Bastion.MariaDbPort);

        Assert.Equal(Bastion.Marker, await BastionKit.MariaDbMarkerAsync(forwarded));
        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(host) == 1, TimeSpan.FromSeconds(5)), Bastion.LogTail());
    }

    [Fact]
    public async Task Five_forwardings_over_one_session_count_as_one_session_and_a_second_client_as_another()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var host = Bastion.UniqueTargetHost();
        using (var client = await BastionKit.ConnectAsync("password"))
        {
            using var forwarded = BastionKit.Forward(client, host, Bastion.PostgresPort);
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal(Bastion.Marker, (await BastionKit.PostgresMarkerAsync(forwarded)).Marker);
            }
        }

        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(host) == 5, TimeSpan.FromSeconds(5)), Bastion.LogTail());
        Assert.Equal(1, Bastion.SessionsForwardingTo(host));

        using (var second = await BastionKit.ConnectAsync("ecdsa"))
        {
            using var forwarded = BastionKit.Forward(second, host, Bastion.PostgresPort);
            await BastionKit.PostgresMarkerAsync(forwarded);
        }

        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(host) == 6, TimeSpan.FromSeconds(5)), Bastion.LogTail());
        Assert.Equal(2, Bastion.SessionsForwardingTo(host));
    }

    [Fact]
    public async Task A_login_as_a_user_that_does_not_exist_is_refused_and_counted()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var nobody = Unique.Name("caravan-nobody-");
        Assert.Equal(0, Bastion.AuthAttemptsFor(nobody));
        using var client = BastionKit.Client(new PasswordAuthenticationMethod(nobody, Bastion.Password));

        await Assert.ThrowsAsync<SshAuthenticationException>(() => client.ConnectAsync(TestContext.Current.CancellationToken));

        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.AuthAttemptsFor(nobody) > 0, TimeSpan.FromSeconds(5)), Bastion.LogTail());
    }

    [Fact]
    public async Task A_client_that_refuses_the_host_key_never_reaches_authentication()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var nobody = Unique.Name("caravan-nobody-");
        using var client = BastionKit.Client(new PasswordAuthenticationMethod(nobody, Bastion.Password), trusted: "SHA256:not-the-bastion");

        await Assert.ThrowsAsync<SshConnectionException>(() => client.ConnectAsync(TestContext.Current.CancellationToken));

        // The refusal happens in the key exchange; had the client gone on, its first request would
        // be logged at once (see the test above), so a short wait is enough to see it did not.
        Assert.False(await Bastion.WaitForLogAsync(() => Bastion.AuthAttemptsFor(nobody) > 0, TimeSpan.FromSeconds(2)));
    }

    [Fact]
    public async Task The_rsa_host_key_is_the_one_the_env_file_names()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var info = BastionKit.Connection(BastionKit.Login("password"));
        foreach (var algorithm in info.HostKeyAlgorithms.Keys.Where(name => !name.StartsWith("rsa-sha2-", StringComparison.Ordinal)).ToList())
        {
            info.HostKeyAlgorithms.Remove(algorithm);
        }

        string? seen = null;
        using var client = new SshClient(info);
        client.HostKeyReceived += (_, e) =>
        {
            seen = "SHA256:" + e.FingerPrintSHA256;
            e.CanTrust = seen == Bastion.RsaHostKeyFingerprint;
        };
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        Assert.Equal(Bastion.RsaHostKeyFingerprint, seen);
        Assert.StartsWith("ssh-rsa ", Bastion.RsaHostKeyLine, StringComparison.Ordinal);
        Assert.StartsWith("ssh-ed25519 ", Bastion.HostKeyLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_databases_ports_are_closed_outside_the_namespace()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        foreach (var port in new[] { Bastion.PostgresPort, Bastion.MariaDbPort })
        {
            foreach (var host in new[] { "127.0.0.1", Bastion.UniqueTargetHost() })
            {
                using var socket = new TcpClient();
                var refused = await Assert.ThrowsAsync<SocketException>(() => socket.ConnectAsync(host, port, TestContext.Current.CancellationToken).AsTask());
                Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
            }
        }
    }
}

/// <summary>The restart, alone (<see cref="Bastion.RestartCollection"/>): it drops every session on the bastion.</summary>
[Collection(Bastion.RestartCollection)]
public sealed class BastionRestartSelfTests
{
    [Fact]
    public async Task A_restart_drops_a_connected_client_and_the_bastion_accepts_again()
    {
        Assert.SkipWhen(Bastion.Missing, Bastion.NoServer);
        var host = Bastion.UniqueTargetHost();
        using var before = await BastionKit.ConnectAsync("ed25519");
        using var forwarded = BastionKit.Forward(before, host, Bastion.PostgresPort);
        await BastionKit.PostgresMarkerAsync(forwarded);

        await Bastion.RestartAsync();

        Assert.True(await Bastion.WaitForLogAsync(() => !before.IsConnected, TimeSpan.FromSeconds(10)), "The client is still connected after the restart.");
        using var after = await BastionKit.ConnectAsync("ed25519");
        using var again = BastionKit.Forward(after, host, Bastion.PostgresPort);
        Assert.Equal(Bastion.Marker, (await BastionKit.PostgresMarkerAsync(again)).Marker);
        Assert.True(await Bastion.WaitForLogAsync(() => Bastion.ForwardingsTo(host) == 2, TimeSpan.FromSeconds(5)), Bastion.LogTail());
        Assert.Equal(2, Bastion.SessionsForwardingTo(host));
    }
}

/// <summary>SSH.NET clients of the bastion, for the self-tests.</summary>
internal static class BastionKit
{
    public static AuthenticationMethod Login(string login) => login switch
    {
        "password" => new PasswordAuthenticationMethod(Bastion.User, Bastion.Password),
        "ed25519" => Key(Bastion.Ed25519Key, null),
        "rsa-openssh-encrypted" => Key(Bastion.RsaKeyEncrypted, Bastion.RsaKeyPassphrase),
        "rsa-pem-encrypted" => Key(Bastion.RsaKeyPem, Bastion.RsaKeyPemPassphrase),
        "ecdsa" => Key(Bastion.EcdsaKey, null),
        _ => throw new ArgumentOutOfRangeException(nameof(login), login, null),
    };

    public static ConnectionInfo Connection(AuthenticationMethod login) =>
        new(Bastion.SshHost, Bastion.SshPort, login.Username, login) { Timeout = TimeSpan.FromSeconds(15) };

    /// <summary>A client that trusts only the host key whose fingerprint is <paramref name="trusted"/> (by default the bastion's Ed25519 key).</summary>
    public static SshClient Client(AuthenticationMethod login, string? trusted = null)
    {
        var client = new SshClient(Connection(login));
        client.HostKeyReceived += (_, e) => e.CanTrust = "SHA256:" + e.FingerPrintSHA256 == (trusted ?? Bastion.HostKeyFingerprint);
        return client;
    }

    /// <summary>A client connected and logged in as the test user with <paramref name="login"/> (see <see cref="Login"/>).</summary>
    public static async Task<SshClient> ConnectAsync(string login)
    {
        var client = Client(Login(login));
        await client.ConnectAsync(TestContext.Current.CancellationToken);
        return client;
    }

    /// <summary>A local port on 127.0.0.1 forwarded through <paramref name="client"/>'s session to <paramref name="host"/>:<paramref name="port"/>.</summary>
    public static ForwardedPortLocal Forward(SshClient client, string host, int port)
    {
        var forwarded = new ForwardedPortLocal("127.0.0.1", 0, host, (uint)port);
        client.AddForwardedPort(forwarded);
        forwarded.Start();
        return forwarded;
    }

    /// <summary>The marker, and the address the server saw the connection arrive on.</summary>
    public static async Task<(string Marker, string ServerAddress)> PostgresMarkerAsync(ForwardedPortLocal forwarded)
    {
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = (int)forwarded.BoundPort, Username = Bastion.PostgresUser, Password = Bastion.PostgresPassword,
            Database = Bastion.MarkerDatabase, Pooling = false, SslMode = SslMode.Disable,
        };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new NpgsqlCommand("SELECT value, host(inet_server_addr()) FROM marker", connection);
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        Assert.True(await reader.ReadAsync(TestContext.Current.CancellationToken));
        return (reader.GetString(0), reader.GetString(1));
    }

    public static async Task<string> MariaDbMarkerAsync(ForwardedPortLocal forwarded)
    {
        var builder = new MySqlConnectionStringBuilder
        {
            Server = "127.0.0.1", Port = forwarded.BoundPort, UserID = Bastion.MariaDbUser, Password = Bastion.MariaDbPassword,
            Database = Bastion.MarkerDatabase, Pooling = false, SslMode = MySqlSslMode.None,
        };
        await using var connection = new MySqlConnection(builder.ConnectionString);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new MySqlCommand("SELECT value FROM marker", connection);
        return (string)(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    private static PrivateKeyAuthenticationMethod Key(string text, string? passphrase) =>
        new(Bastion.User, new PrivateKeyFile(new MemoryStream(Encoding.UTF8.GetBytes(text)), passphrase));
}
