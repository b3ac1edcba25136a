using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Caravan.Api.Tests.Infrastructure;

/// <summary>
/// The SSH bastion that <c>tests/servers/bastion.sh DIR</c> starts (./test.sh does, as root) and
/// <c>CARAVAN_TEST_BASTION=DIR</c> names: Debian's OpenSSH sshd in a network namespace that has
/// nothing but its loopback, with a PostgreSQL and a MariaDB beside it that hold the same
/// <see cref="Marker"/> in <c>bastion_only.marker</c>. From the tests' namespace only sshd can be
/// reached (127.0.0.1:<see cref="SshPort"/>, a relay); the databases' ports are closed here. So a
/// query that returns the marker went through the bastion, and sshd's log says which session did.
/// </summary>
/// <remarks>
/// <para>
/// Every 127.x.y.z of the namespace reaches both databases. A test makes its traffic its own by
/// forwarding to a target host no other test uses (<see cref="UniqueTargetHost"/>), and counts it
/// in sshd's log (<see cref="SessionsForwardingTo"/>, <see cref="ForwardingsTo"/>). The log is
/// DIR/sshd.log, sshd's syslog at DEBUG1, one line per message: <c>sshd[PID]: MESSAGE</c>. The lines
/// read here, as OpenSSH 9.2 writes them:
/// </para>
/// <list type="bullet">
/// <item><c>sshd[PID]: debug1: server_request_direct_tcpip: originator 127.0.0.1 port 56466, target 127.9.8.7 port 5432</c>
/// — one per direct-tcpip channel (one forwarded connection), written by the session's own
/// unprivileged process, so PID tells the sessions apart (its privileged monitor logs
/// <c>User child is on pid PID</c> after <c>Accepted password for USER from 127.0.0.1 port N ssh2</c>).</item>
/// <item><c>sshd[PID]: debug1: userauth-request for user NAME service ssh-connection method METHOD [preauth]</c>
/// — one per authentication request a client sends (the first is usually method <c>none</c>),
/// for existing and non-existent users alike; a non-existent one also gets <c>Invalid user NAME from …</c>.</item>
/// </list>
/// <para>
/// <see cref="RestartAsync"/> drops every session on the bastion, other tests' too. A test that
/// restarts it belongs to the collection <see cref="RestartCollection"/>, which xunit runs alone,
/// after the parallel tests; restarts are serialized in any case.
/// </para>
/// </remarks>
public static class Bastion
{
    public const string NoServer = "No SSH bastion: run tests/servers/bastion.sh DIR as root and set CARAVAN_TEST_BASTION=DIR (./test.sh does when it runs as root).";

    /// <summary>The collection of tests that restart the bastion: xunit runs it with nothing else at the same time.</summary>
    public const string RestartCollection = "Bastion restarts";

    private static readonly string? Dir = Environment.GetEnvironmentVariable("CARAVAN_TEST_BASTION");
    private static readonly Lazy<IReadOnlyDictionary<string, string>> Variables = new(ReadEnv);
    private static readonly SemaphoreSlim Restarting = new(1, 1);

    // Where the log stood when each target host was handed out: lines before it are from another
    // run (./test.sh runs the suite twice against one bastion) and do not count.
    private static readonly ConcurrentDictionary<string, long> TargetHosts = new();

    private static readonly Regex LogLine = new(@"^[\w.-]+\[(?<pid>\d+)\]: (?<message>.*)$", RegexOptions.CultureInvariant);

    public static bool Missing => string.IsNullOrEmpty(Dir) || !File.Exists(Path.Combine(Dir, "env"));

    public static string Directory => Dir ?? throw new InvalidOperationException(NoServer);

    /// <summary>Where the tests reach sshd: 127.0.0.1 of their own namespace.</summary>
    public static string SshHost => Get("CARAVAN_BASTION_SSH_HOST");

    public static int SshPort => Number("CARAVAN_BASTION_SSH_PORT");

    /// <summary>The test user: a password, and the public halves of the four keys below authorized.</summary>
    public static string User => Get("CARAVAN_BASTION_USER");

    public static string Password => Get("CARAVAN_BASTION_PASSWORD");

    /// <summary>An unencrypted Ed25519 key, OpenSSH format.</summary>
    public static string Ed25519Key => KeyText("CARAVAN_BASTION_ED25519_KEY");

    /// <summary>An RSA 3072 key in OpenSSH format, encrypted with <see cref="RsaKeyPassphrase"/>.</summary>
    public static string RsaKeyEncrypted => KeyText("CARAVAN_BASTION_RSA_KEY");

    public static string RsaKeyPassphrase => Get("CARAVAN_BASTION_RSA_PASSPHRASE");

    /// <summary>Another RSA 3072 key, PEM (<c>BEGIN RSA PRIVATE KEY</c>, Proc-Type encrypted) with <see cref="RsaKeyPemPassphrase"/>.</summary>
    public static string RsaKeyPem => KeyText("CARAVAN_BASTION_RSA_PEM_KEY");

    public static string RsaKeyPemPassphrase => Get("CARAVAN_BASTION_RSA_PEM_PASSPHRASE");

    /// <summary>An unencrypted ECDSA P-256 key, OpenSSH format.</summary>
    public static string EcdsaKey => KeyText("CARAVAN_BASTION_ECDSA_KEY");

    /// <summary>The Ed25519 host key's fingerprint as <c>ssh-keygen -l</c> shows it: <c>SHA256:</c> and unpadded base64.</summary>
    public static string HostKeyFingerprint => Get("CARAVAN_BASTION_HOST_KEY_FINGERPRINT");

    /// <summary>The Ed25519 host key as a known_hosts entry writes it: <c>ssh-ed25519 AAAA…</c>.</summary>
    public static string HostKeyLine => Get("CARAVAN_BASTION_HOST_KEY_LINE");

    public static string RsaHostKeyFingerprint => Get("CARAVAN_BASTION_RSA_HOST_KEY_FINGERPRINT");

    /// <summary>The RSA host key: <c>ssh-rsa AAAA…</c>.</summary>
    public static string RsaHostKeyLine => Get("CARAVAN_BASTION_RSA_HOST_KEY_LINE");

    /// <summary>The network namespace's name (<c>ip netns</c>).</summary>
    public static string Namespace => Get("CARAVAN_BASTION_NAMESPACE");

    /// <summary>PostgreSQL's port inside the namespace (on every 127.x.y.z there; closed in the tests' namespace).</summary>
    public static int PostgresPort => Number("CARAVAN_BASTION_POSTGRES_PORT");

    public static string PostgresUser => Get("CARAVAN_BASTION_POSTGRES_USER");

    public static string PostgresPassword => Get("CARAVAN_BASTION_POSTGRES_PASSWORD");

    /// <summary>MariaDB's port inside the namespace (on every 127.x.y.z there; closed in the tests' namespace).</summary>
    public static int MariaDbPort => Number("CARAVAN_BASTION_MARIADB_PORT");

    public static string MariaDbUser => Get("CARAVAN_BASTION_MARIADB_USER");

    public static string MariaDbPassword => Get("CARAVAN_BASTION_MARIADB_PASSWORD");

    /// <summary>The database, in PostgreSQL and in MariaDB, whose table <c>marker(value text)</c> holds <see cref="Marker"/>.</summary>
    public const string MarkerDatabase = "bastion_only";

    /// <summary>The random token in both databases' <c>bastion_only.marker</c>: read it and you went through the bastion.</summary>
    public static string Marker => Get("CARAVAN_BASTION_MARKER");

    /// <summary>
    /// An address 127.a.b.c no other test of this run uses (never 127.0.0.1): give it to the source
    /// as its database host, and sshd's log shows every forwarding to it and which session made it.
    /// </summary>
    public static string UniqueTargetHost()
    {
        var start = LogLength();
        while (true)
        {
            var host = $"127.{RandomNumberGenerator.GetInt32(1, 255)}.{RandomNumberGenerator.GetInt32(1, 255)}.{RandomNumberGenerator.GetInt32(1, 255)}";
            if (TargetHosts.TryAdd(host, start))
            {
                return host;
            }
        }
    }

    /// <summary>How many distinct SSH sessions opened a direct-tcpip channel to <paramref name="targetHost"/>.</summary>
    public static int SessionsForwardingTo(string targetHost) =>
        ForwardingLines(targetHost).Select(line => line.Pid).Distinct().Count();

    /// <summary>How many direct-tcpip channels (forwarded connections) sessions opened to <paramref name="targetHost"/>.</summary>
    public static int ForwardingsTo(string targetHost) => ForwardingLines(targetHost).Count();

    /// <summary>
    /// How many authentication requests sshd logged for the user name <paramref name="user"/>
    /// (whether or not such a user exists): zero means no client got as far as authenticating as it.
    /// </summary>
    public static int AuthAttemptsFor(string user)
    {
        var prefix = $"debug1: userauth-request for user {user} service ";
        return ReadLog(0).Count(line => line.Message.StartsWith(prefix, StringComparison.Ordinal));
    }

    /// <summary>Waits until <paramref name="condition"/> (a query over the log) holds; false if it still does not after <paramref name="timeout"/>.</summary>
    public static async Task<bool> WaitForLogAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                return false;
            }

            await Task.Delay(50);
        }

        return true;
    }

    /// <summary>
    /// Restarts the bastion the hard way (DIR/restart-sshd, as root): kills sshd and every session it
    /// forked, so every client's connection drops, then starts it again and waits until it accepts.
    /// Only for tests in <see cref="RestartCollection"/>.
    /// </summary>
    public static async Task RestartAsync()
    {
        await Restarting.WaitAsync();
        try
        {
            using var process = Process.Start(new ProcessStartInfo(Path.Combine(Directory, "restart-sshd"))
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"restart-sshd failed ({process.ExitCode}): {await output}{await error}");
            }
        }
        finally
        {
            Restarting.Release();
        }
    }

    /// <summary>The last lines of sshd's log, for a failing assertion's message.</summary>
    public static string LogTail(int lines = 40) =>
        string.Join('\n', ReadLog(Math.Max(0, LogLength() - 64 * 1024)).TakeLast(lines).Select(line => $"sshd[{line.Pid}]: {line.Message}"));

    private static IEnumerable<(int Pid, string Message)> ForwardingLines(string targetHost)
    {
        var suffix = $", target {targetHost} port ";
        return ReadLog(TargetHosts.GetValueOrDefault(targetHost)).Where(line =>
            line.Message.StartsWith("debug1: server_request_direct_tcpip: originator ", StringComparison.Ordinal)
            && line.Message.Contains(suffix, StringComparison.Ordinal));
    }

    private static string LogPath => Path.Combine(Directory, "sshd.log");

    private static long LogLength() => Missing ? 0 : new FileInfo(LogPath).Length;

    // The receiver appends whole lines while tests read; a last line without its newline is still
    // being written and is left for the next read.
    private static List<(int Pid, string Message)> ReadLog(long from)
    {
        using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        stream.Seek(from, SeekOrigin.Begin);
        var text = new StreamReader(stream, Encoding.UTF8).ReadToEnd();
        var complete = text.LastIndexOf('\n');
        var lines = new List<(int, string)>();
        foreach (var line in text[..(complete + 1)].Split('\n'))
        {
            var match = LogLine.Match(line);
            if (match.Success)
            {
                lines.Add((int.Parse(match.Groups["pid"].Value, CultureInfo.InvariantCulture), match.Groups["message"].Value));
            }
        }

        return lines;
    }

    private static int Number(string variable) => int.Parse(Get(variable), CultureInfo.InvariantCulture);

    private static string KeyText(string variable) => File.ReadAllText(Get(variable));

    private static string Get(string name) =>
        Variables.Value.TryGetValue(name, out var value) ? value : throw new InvalidOperationException($"{Path.Combine(Directory, "env")} does not set {name}.");

    // DIR/env is a shell file of lines export NAME="VALUE"; its values hold no quotes or escapes.
    private static IReadOnlyDictionary<string, string> ReadEnv()
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadAllLines(Path.Combine(Directory, "env")))
        {
            var match = Regex.Match(line, "^export (?<name>[A-Z0-9_]+)=\"(?<value>[^\"]*)\"$");
            if (match.Success)
            {
                variables[match.Groups["name"].Value] = match.Groups["value"].Value;
            }
        }

        return variables;
    }
}

/// <summary>Tests that restart the bastion: run alone, since a restart drops every session on it.</summary>
[CollectionDefinition(Bastion.RestartCollection, DisableParallelization = true)]
public sealed class BastionRestarts;
