using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Npgsql;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>The test PostgreSQL server (<c>CARAVAN_TEST_POSTGRES</c>) and names unique to one test.</summary>
internal static class Pg
{
    public const string NoServer = "No PostgreSQL server configured: set CARAVAN_TEST_POSTGRES (./test.sh provides one).";

    public static bool Missing => string.IsNullOrEmpty(TestStore.PostgresAdmin);

    public static NpgsqlConnectionStringBuilder Admin => new(TestStore.PostgresAdmin);

    /// <summary>A lower-case identifier no other test uses.</summary>
    public static string Unique(string prefix) => prefix + "_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    /// <summary>A password no other test uses, easy to search for in bodies and logs.</summary>
    public static string Password(string prefix) => prefix + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10));

    public static async Task ExecuteAsync(string sql, string? database = null)
    {
        var builder = Admin;
        if (database is not null)
        {
            builder.Database = database;
        }

        builder.Pooling = false;
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>
/// A login role with a password and a database of its own on the test server, with schemas the
/// role may use; dropped when disposed. The role has no other privilege: PostgreSQL grants CONNECT
/// on a new database to PUBLIC, and each schema grants USAGE to the role.
/// </summary>
internal sealed class ScratchDatabase : IAsyncDisposable
{
    private ScratchDatabase(string role, string password, string database, IReadOnlyList<string> schemas)
    {
        Role = role;
        Password = password;
        Database = database;
        Schemas = schemas;
    }

    public string Host { get; } = Pg.Admin.Host!;

    public int Port { get; } = Pg.Admin.Port;

    public string Role { get; }

    public string Password { get; }

    public string Database { get; }

    public IReadOnlyList<string> Schemas { get; }

    public static async Task<ScratchDatabase> CreateAsync(int schemaCount = 0, string? password = null)
    {
        var role = Pg.Unique("caravan_role");
        var database = Pg.Unique("caravan_db");
        var schemas = Enumerable.Range(0, schemaCount).Select(i => Pg.Unique($"s{i}")).ToList();
        var scratch = new ScratchDatabase(role, password ?? Pg.Password("pw"), database, schemas);
        await Pg.ExecuteAsync($"CREATE ROLE {role} LOGIN PASSWORD '{scratch.Password.Replace("'", "''", StringComparison.Ordinal)}'");
        await Pg.ExecuteAsync($"CREATE DATABASE {database}");
        foreach (var schema in schemas)
        {
            await Pg.ExecuteAsync($"CREATE SCHEMA {schema}; GRANT USAGE ON SCHEMA {schema} TO {role}", database);
        }

        return scratch;
    }

    /// <summary>A create body in the fields form; <paramref name="change"/> adjusts it.</summary>
    public string Body(Action<JsonObject>? change = null)
    {
        var body = new JsonObject
        {
            ["type"] = "postgres",
            ["account_name"] = "Scratch " + Database,
            ["hostname"] = Host,
            ["port"] = Port,
            ["username"] = Role,
            ["password"] = Password,
            ["database_name"] = Database,
        };
        change?.Invoke(body);
        return body.ToJsonString();
    }

    public async ValueTask DisposeAsync()
    {
        await Pg.ExecuteAsync($"DROP DATABASE IF EXISTS {Database} WITH (FORCE)");
        await Pg.ExecuteAsync($"DROP ROLE IF EXISTS {Role}");
    }
}

/// <summary>
/// A TCP listener that accepts every connection, records the local address it arrived on (the
/// address the client connected to) and then either never answers or closes at once.
/// </summary>
internal sealed class RecordingListener : IDisposable
{
    private readonly TcpListener _listener;
    private readonly ConcurrentQueue<Socket> _sockets = new();
    private readonly ConcurrentQueue<IPEndPoint> _arrivals = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly bool _hangUp;

    public RecordingListener(IPAddress address, int port = 0, bool hangUp = false)
    {
        _hangUp = hangUp;
        _listener = new TcpListener(address, port);
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            _listener.Server.DualMode = false;
        }

        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptAsync();
    }

    public int Port { get; }

    /// <summary>The local end of every accepted connection.</summary>
    public IReadOnlyCollection<IPEndPoint> Arrivals => _arrivals;

    /// <summary>Listeners on 127.0.0.1 and ::1 with the same port; null if no common port was found.</summary>
    public static (RecordingListener V4, RecordingListener V6)? OnBothLoopbacks(bool hangUp = false)
    {
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var v4 = new RecordingListener(IPAddress.Loopback, hangUp: hangUp);
            try
            {
                return (v4, new RecordingListener(IPAddress.IPv6Loopback, v4.Port, hangUp));
            }
            catch (SocketException)
            {
                v4.Dispose();
            }
        }

        return null;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        while (_sockets.TryDequeue(out var socket))
        {
            socket.Dispose();
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                _arrivals.Enqueue((IPEndPoint)socket.LocalEndPoint!);
                if (_hangUp)
                {
                    socket.Dispose();
                }
                else
                {
                    _sockets.Enqueue(socket);
                }
            }
        }
        catch (Exception exception) when (exception is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }
    }
}

/// <summary>Checks on the connection test report of section 8.</summary>
internal static class StepReports
{
    private static readonly string[] Statuses = ["ok", "failed", "skipped"];

    public static readonly string[] PostgresSteps = ["resolve", "egress", "connect", "tls", "authenticate", "query", "schemas"];

    /// <summary>A loopback port nothing listens on (bound, then released).</summary>
    public static int ClosedPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    public static string Body(string host, int port, string password = "not-the-password", Action<JsonObject>? change = null)
    {
        var body = new JsonObject
        {
            ["type"] = "postgres",
            ["account_name"] = "Probe",
            ["hostname"] = host,
            ["port"] = port,
            ["username"] = "caravan_probe",
            ["password"] = password,
            ["database_name"] = "probe",
        };
        change?.Invoke(body);
        return body.ToJsonString();
    }

    /// <summary>Asserts the exact key sets of the report and of every step, and the types of their values.</summary>
    public static JsonObject AssertShape(JsonNode report)
    {
        var root = report.AsObject();
        Assert.Equal(["duration_ms", "ok", "steps"], root.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.True(root["duration_ms"]!.GetValue<long>() >= 0);
        _ = root["ok"]!.GetValue<bool>();
        foreach (var step in root["steps"]!.AsArray())
        {
            var entry = step!.AsObject();
            Assert.Equal(["code", "duration_ms", "message", "name", "status"], entry.Select(p => p.Key).Order(StringComparer.Ordinal));
            Assert.Contains(entry["status"]!.GetValue<string>(), Statuses);
            Assert.True(entry["duration_ms"]!.GetValue<long>() >= 0);
            Assert.False(string.IsNullOrEmpty(entry["name"]!.GetValue<string>()));
            if (entry["status"]!.GetValue<string>() == "failed")
            {
                Assert.False(string.IsNullOrEmpty(entry["code"]?.GetValue<string>()), $"a failed step has a code: {report.ToJsonString()}");
                Assert.False(string.IsNullOrEmpty(entry["message"]?.GetValue<string>()), $"a failed step has a message: {report.ToJsonString()}");
            }
            else
            {
                Assert.Null(entry["code"]);
            }
        }

        // A report is ok exactly when no step failed, and one that is not names the one step it failed at.
        var failures = root["steps"]!.AsArray().Count(s => s!["status"]!.GetValue<string>() == "failed");
        Assert.True(root["ok"]!.GetValue<bool>() ? failures == 0 : failures == 1, $"ok and the failed steps disagree: {report.ToJsonString()}");
        return root;
    }

    public static IReadOnlyList<string> Names(JsonNode report) =>
        [.. report["steps"]!.AsArray().Select(s => s!["name"]!.GetValue<string>())];

    public static string Status(JsonNode report, string step) => Step(report, step)["status"]!.GetValue<string>();

    public static JsonObject Step(JsonNode report, string name) =>
        report["steps"]!.AsArray().Single(s => s!["name"]!.GetValue<string>() == name)!.AsObject();

    /// <summary>
    /// Asserts ok is false, exactly <paramref name="step"/> failed with <paramref name="code"/>,
    /// no step before it failed and every step after it was skipped.
    /// </summary>
    public static void AssertFailedAt(JsonNode report, string step, string code)
    {
        AssertShape(report);
        var text = report.ToJsonString();
        Assert.False(report["ok"]!.GetValue<bool>(), text);
        var steps = report["steps"]!.AsArray().Select(s => s!.AsObject()).ToList();
        var index = steps.FindIndex(s => s["name"]!.GetValue<string>() == step);
        Assert.True(index >= 0, $"no step {step}: {text}");
        Assert.True(steps[index]["status"]!.GetValue<string>() == "failed", $"{step} did not fail: {text}");
        Assert.True(steps[index]["code"]!.GetValue<string>() == code, $"{step} failed with another code than {code}: {text}");
        Assert.All(steps.Take(index), s => Assert.NotEqual("failed", s["status"]!.GetValue<string>()));
        Assert.All(steps.Skip(index + 1), s => Assert.True(s["status"]!.GetValue<string>() == "skipped", $"{s["name"]} after the failure is not skipped: {text}"));
    }

    public static string Url(long id, string route) => string.Create(CultureInfo.InvariantCulture, $"/api/v1/sources/{id}/{route}/");
}
