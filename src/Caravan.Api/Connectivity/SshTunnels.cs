using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Caravan.Api.Connectors;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace Caravan.Api.Connectivity;

/// <summary>
/// The SSH sessions of sources reached through a bastion (contract section 10): one per source and
/// configuration, shared by its tests, discovery and queries (and so by their pools), kept alive,
/// reopened when the bastion dropped it, closed when the configuration changes, the source goes or
/// nothing has used it for <see cref="ConnectivityOptions.SshIdleSeconds"/>. The bastion's host key is checked against the pinned
/// one before anything else is sent (no trust on first use), and the forwarded port listens on
/// loopback and serves only this process's own connections (<see cref="OwnConnections"/>).
/// </summary>
public sealed class SshTunnels : IAsyncDisposable
{
    public const string KeyPrefix = "ssh:";

    public const string SshConnect = "ssh_connect";
    public const string SshHostKeyStep = "ssh_hostkey";
    public const string SshAuth = "ssh_auth";
    public const string SshForward = "ssh_forward";


    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);
    private static long s_generation;

    private readonly ConcurrentDictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly IOptions<ConnectivityOptions> _options;
    private readonly ILogger<SshTunnels> _logger;
    private readonly ITimer _sweeper;

    public SshTunnels(IOptions<ConnectivityOptions> options, TimeProvider time, ILogger<SshTunnels> logger)
    {
        _options = options;
        _logger = logger;
        IdleLimit = TimeSpan.FromSeconds(options.Value.SshIdleSeconds);
        var period = TimeSpan.FromSeconds(Math.Clamp(options.Value.SshIdleSeconds / 2, 1, 30));
        _sweeper = time.CreateTimer(_ => Sweep(), null, period, period);
    }

    /// <summary>How long a session nothing used stays open.</summary>
    public TimeSpan IdleLimit { get; }

    /// <summary>The number of open sessions, of every source (for tests and diagnostics).</summary>
    public int OpenSessions => _slots.Values.Count(s => s.Tunnel is { IsOpen: true });

    private TimeSpan ConnectLimit => TimeSpan.FromSeconds(Math.Clamp(_options.Value.ConnectTimeoutSeconds, 1, 60));

    /// <summary>Whether the source is reached through a bastion.</summary>
    public static bool Holds(SourceConnection connection) => NetworkPathFields.Holds(connection, NetworkPathFields.SshTunnel);

    /// <summary>
    /// The steps of a tunnelled source's test: the bastion's <c>resolve</c> and <c>egress</c>, the
    /// four <c>ssh_*</c> steps, then the database's own steps after its <c>connect</c>.
    /// </summary>
    public static IReadOnlyList<string> Plan(IReadOnlyList<string> driverSteps) =>
        [TestSteps.Resolve, TestSteps.Egress, SshConnect, SshHostKeyStep, SshAuth, SshForward,
            .. driverSteps.Where(s => s is not (TestSteps.Resolve or TestSteps.Egress or TestSteps.Connect))];

    /// <summary>The local ports of a source's open sessions (for tests and diagnostics).</summary>
    public IReadOnlyList<int> ForwardedPorts(long sourceId) =>
        [.. _slots.Values.Where(s => s.SourceId == sourceId).Select(s => s.Tunnel).OfType<Tunnel>().Where(t => t.IsOpen).Select(t => t.Port)];

    /// <summary>
    /// A test's way to the database: records <c>resolve</c> and <c>egress</c> (of the bastion) and
    /// the <c>ssh_*</c> steps, and returns the forwarded endpoint, or null when a step failed. An
    /// open session of the same source and configuration is reused (and says so).
    /// </summary>
    public async Task<DatabaseEndpoint?> OpenAsync(TestRun run, SourceConnection connection, string host, NetworkPath network)
    {
        var settings = TunnelSettings.Of(connection, host);
        if (await network.CheckAsync(run, settings.BastionHost) is not { } bastion)
        {
            return null;
        }

        Slot slot;
        try
        {
            slot = await AcquireAsync(settings.SlotKey(connection.SourceId), connection.SourceId, run.Token);
        }
        catch (OperationCanceledException)
        {
            await run.FailAsync(SshConnect, new ConnectivityException(FailureCodes.Timeout, "The source's SSH session was still being opened when the test's time ran out."));
            return null;
        }

        try
        {
            if (slot.Tunnel is { IsOpen: true } open && open.Bastion.Equals(bastion))
            {
                open.Touch();
                run.Succeed(SshConnect, $"The source's SSH session to {settings.BastionHost}:{settings.BastionPort} is open ({open.ServerVersion}); reused.");
                run.Succeed(SshHostKeyStep, $"The bastion's {open.HostKeyType} key {open.Fingerprint} is the pinned one (checked when the session opened).");
                run.Succeed(SshAuth, $"Logged in as {settings.Username} when the session opened.");
                run.Succeed(SshForward, Tunnel.Describe(settings));
                return open.Endpoint(host);
            }

            Retire(slot);
            var opening = new Opening(settings, bastion, ConnectLimit, run.Token);
            await run.StepAsync(SshConnect, token => Passed(opening.Identified, token), _ => $"The bastion answers: {opening.ServerVersion}.", ConnectLimit);
            await run.StepAsync(SshHostKeyStep, token => Passed(opening.HostKeyChecked, token),
                _ => $"The bastion's {opening.HostKeyType} key {opening.Fingerprint} is the pinned one.");
            await run.StepAsync(SshAuth, token => Passed(opening.Connected, token),
                _ => $"Logged in as {settings.Username} with {opening.Method}.", ConnectLimit);
            if (run.HasFailed)
            {
                opening.Abandon();
                return null;
            }

            var tunnel = await run.StepAsync(SshForward, _ => Task.FromResult(opening.Forward(_logger)), _ => Tunnel.Describe(settings));
            slot.Tunnel = tunnel;
            return tunnel?.Endpoint(host);
        }
        finally
        {
            slot.Gate.Release();
        }
    }

    /// <summary>
    /// Discovery's and queries' way to the database: the forwarded endpoint of the source's open
    /// session, or of one opened now (the bastion resolved and checked by the egress policy first).
    /// A session the bastion dropped is reopened here. Failures are <see cref="ConnectivityException"/>s.
    /// </summary>
    public async Task<DatabaseEndpoint> ReachAsync(SourceConnection connection, string host, NetworkPath network, CancellationToken cancellationToken)
    {
        var settings = TunnelSettings.Of(connection, host);
        var key = settings.SlotKey(connection.SourceId);
        if (_slots.TryGetValue(key, out var known) && known.Tunnel is { IsOpen: true } ready)
        {
            ready.Touch();
            return ready.Endpoint(host);
        }

        var slot = await AcquireAsync(key, connection.SourceId, cancellationToken);
        try
        {
            if (slot.Tunnel is { IsOpen: true } open)
            {
                open.Touch();
                return open.Endpoint(host);
            }

            Retire(slot);
            var bastion = await network.ResolveAllowedAsync(settings.BastionHost, cancellationToken);
            var opening = new Opening(settings, bastion, ConnectLimit, cancellationToken);
            try
            {
                await opening.Connected;
            }
            catch (ConnectivityException failure)
            {
                opening.Abandon();
                throw new ConnectivityException(failure.Code, "SSH tunnel: " + failure.Message, failure);
            }

            var tunnel = opening.Forward(_logger);
            slot.Tunnel = tunnel;
            _logger.LogInformation("Opened an SSH session to a bastion for source {SourceId}", connection.SourceId);
            return tunnel.Endpoint(host);
        }
        finally
        {
            slot.Gate.Release();
        }
    }

    /// <summary>
    /// The slot of <paramref name="key"/> with its gate held. A slot the sweep removed while this
    /// waited is left for a fresh one, so no session is ever opened where nothing would close it.
    /// </summary>
    private async Task<Slot> AcquireAsync(string key, long? sourceId, CancellationToken cancellationToken)
    {
        while (true)
        {
            var slot = _slots.GetOrAdd(key, _ => new Slot(sourceId));
            await slot.Gate.WaitAsync(cancellationToken);
            if (!slot.Removed)
            {
                return slot;
            }

            slot.Gate.Release();
        }
    }

    private static async Task<bool> Passed(Task phase, CancellationToken cancellationToken)
    {
        await phase.WaitAsync(cancellationToken);
        return true;
    }

    /// <summary>Closes the sessions of a source (its configuration changed, or it was deleted); the sweep removes their slots.</summary>
    public void Close(long sourceId)
    {
        foreach (var slot in _slots.Values)
        {
            if (slot.SourceId == sourceId)
            {
                Retire(slot);
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        _sweeper.Dispose();
        foreach (var slot in _slots.Values)
        {
            slot.Tunnel?.Dispose();
        }

        _slots.Clear();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Closes idle and dropped sessions and forgets their slots (a slot being opened is left alone).
    /// A session with a connection through it (a long query, a pooled connection) is not idle.
    /// </summary>
    private void Sweep()
    {
        var inUse = _slots.IsEmpty ? [] : OwnConnections.ConnectedLoopbackPorts();
        foreach (var (key, slot) in _slots)
        {
            if (slot.Tunnel is { } used && inUse.Contains(used.Port))
            {
                used.Touch();
            }

            if (slot.Tunnel is { } tunnel && tunnel.IdleFor < IdleLimit && tunnel.IsOpen)
            {
                continue;
            }

            if (slot.Gate.Wait(0))
            {
                try
                {
                    if (slot.Tunnel is null || slot.Tunnel.IdleFor >= IdleLimit || !slot.Tunnel.IsOpen)
                    {
                        _slots.TryRemove(new KeyValuePair<string, Slot>(key, slot));
                        slot.Removed = true;
                        Retire(slot);
                    }
                }
                finally
                {
                    slot.Gate.Release();
                }
            }
        }
    }

    /// <summary>Takes the slot's session out of use and closes it in the background (closing waits for its channels).</summary>
    private static void Retire(Slot slot)
    {
        if (Interlocked.Exchange(ref slot.Tunnel, null) is { } old)
        {
            _ = Task.Run(old.Dispose);
        }
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "A SemaphoreSlim whose wait handle is never asked for holds nothing to dispose.")]
    private sealed class Slot(long? sourceId)
    {
        public readonly SemaphoreSlim Gate = new(1, 1);
        public Tunnel? Tunnel;

        /// <summary>Set by the sweep (holding the gate) when it took the slot out of the table.</summary>
        public bool Removed;

        public long? SourceId => sourceId;
    }

    /// <summary>A source's <c>ssh_tunnel</c> group and the database it leads to.</summary>
    private sealed record TunnelSettings(
        string BastionHost, int BastionPort, string Username, string? Password, string? PrivateKey, string? Passphrase,
        string? HostKey, string TargetHost, int TargetPort)
    {
        public static TunnelSettings Of(SourceConnection connection, string host) => new(
            connection.Text("ssh_tunnel.host") ?? throw DriverFailures.Unconfigured(),
            connection.Settings["ssh_tunnel.port"] is System.Text.Json.Nodes.JsonValue port && port.TryGetValue<int>(out var p) ? p : 22,
            connection.Text("ssh_tunnel.username") ?? string.Empty,
            connection.Secret("ssh_tunnel.password"),
            connection.Secret("ssh_tunnel.private_key"),
            connection.Secret("ssh_tunnel.private_key_passphrase"),
            connection.Text("ssh_tunnel.host_key"),
            host.Trim('[', ']'),
            connection.Port);

        /// <summary>
        /// The source's slot: its id and a digest of everything that makes its session (credentials
        /// included, so a new password is a new session), or, for an unsaved configuration, the digest alone.
        /// </summary>
        public string SlotKey(long? sourceId)
        {
            var text = string.Join('\u0000', BastionHost, BastionPort, Username, Password, PrivateKey, Passphrase, HostKey, TargetHost, TargetPort);
            var digest = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
            return $"{sourceId?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}|{digest}";
        }
    }

    /// <summary>
    /// One attempt to open a session, its phases observable one by one so that a test reports
    /// <c>ssh_connect</c>, <c>ssh_hostkey</c> and <c>ssh_auth</c> as separate steps while the
    /// library does all three in one call.
    /// </summary>
    private sealed class Opening : IDisposable
    {
        private readonly TaskCompletionSource _identified = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _hostKey = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TunnelSettings _settings;
        private readonly SshClient _client;
        private readonly PrivateKeyFile? _key;
        private readonly IPAddress _bastion;
        private bool _refused;

        public Opening(TunnelSettings settings, IPAddress bastion, TimeSpan limit, CancellationToken cancellationToken)
        {
            _settings = settings;
            _bastion = bastion;
            var methods = new List<AuthenticationMethod>();
            if (settings.PrivateKey is { } key)
            {
                try
                {
                    _key = SshKeys.Open(key, settings.Passphrase);
                    methods.Add(new PrivateKeyAuthenticationMethod(settings.Username, _key));
                }
                catch (Exception exception) when (exception is SshException or FormatException or ArgumentException or InvalidOperationException or CryptographicException)
                {
                    // Checked when stored; a key that no longer opens is reported at ssh_auth.
                    _key = null;
                }
            }

            if (settings.Password is { } password)
            {
                methods.Add(new PasswordAuthenticationMethod(settings.Username, password));
            }

            var info = new Renci.SshNet.ConnectionInfo(bastion.ToString(), settings.BastionPort, settings.Username, [.. methods])
            {
                Timeout = limit,
                ChannelCloseTimeout = TimeSpan.FromSeconds(2),
                // The library's own log would hold the server's messages; Caravan reports what matters itself.
                LoggerFactory = NullLoggerFactory.Instance,
            };
            RestrictHostKeyAlgorithms(info, settings.HostKey);
            Method = settings.PrivateKey is not null ? (_key is null ? "a private key Caravan cannot open" : "its private key") : "a password";
            _client = new SshClient(info) { KeepAliveInterval = KeepAlive };
            _client.ServerIdentificationReceived += (_, e) =>
            {
                ServerVersion = e.SshIdentification.SoftwareVersion is { Length: > 0 } version ? version : "SSH";
                _identified.TrySetResult();
            };
            _client.HostKeyReceived += (_, e) =>
            {
                HostKeyType = e.HostKeyName;
                Fingerprint = SshHostKey.Of(e.HostKey);
                e.CanTrust = settings.HostKey is { } pinned && SshHostKey.Matches(pinned, e.HostKey);
                _refused = !e.CanTrust;
                if (e.CanTrust)
                {
                    _hostKey.TrySetResult();
                }
            };
            Connected = ConnectAsync(cancellationToken);
            _ = Connected.ContinueWith(t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }

        public string ServerVersion { get; private set; } = "SSH";

        public string HostKeyType { get; private set; } = "host";

        public string Fingerprint { get; private set; } = string.Empty;

        public string Method { get; }

        public Task Identified => _identified.Task;

        public Task HostKeyChecked => _hostKey.Task;

        /// <summary>Completes when the session is open and logged in; fails with the step's failure.</summary>
        public Task Connected { get; }

        public void Abandon() => Dispose();

        public void Dispose()
        {
            _client.Dispose();
            _key?.Dispose();
        }

        public Tunnel Forward(ILogger logger)
        {
            var forward = new ForwardedPortLocal(IPAddress.Loopback.ToString(), 0, _settings.TargetHost, (uint)_settings.TargetPort);
            try
            {
                _client.AddForwardedPort(forward);
                var tunnel = new Tunnel(_client, forward, _key, _bastion, ServerVersion, HostKeyType, Fingerprint, logger);
                forward.Start();
                return tunnel;
            }
            catch (Exception exception) when (exception is SshException or System.Net.Sockets.SocketException or InvalidOperationException)
            {
                forward.Dispose();
                Abandon();
                throw new ConnectivityException(FailureCodes.DriverError, "Caravan could not open the tunnel's local port: " + exception.Message, exception);
            }
        }

        private async Task ConnectAsync(CancellationToken cancellationToken)
        {
            try
            {
                await _client.ConnectAsync(cancellationToken);
                _identified.TrySetResult();
                _hostKey.TrySetResult();
            }
            catch (Exception exception)
            {
                // The phase that failed gets the failure (the ones before it succeeded); a phase
                // never reached gets it too, for whoever waits on it, and nobody has to.
                var failure = Map(exception, cancellationToken);
                foreach (var phase in (TaskCompletionSource[])[_identified, _hostKey])
                {
                    if (phase.TrySetException(failure))
                    {
                        _ = phase.Task.Exception;
                    }
                }

                throw failure;
            }
        }

        private ConnectivityException Map(Exception exception, CancellationToken cancellationToken)
        {
            var phase = !_identified.Task.IsCompleted ? SshConnect : !_hostKey.Task.IsCompleted ? SshHostKeyStep : SshAuth;
            if (_refused)
            {
                return _settings.HostKey is null
                    ? new ConnectivityException(FailureCodes.SshHostKeyUnknown,
                        $"No host_key is pinned, so Caravan sent nothing. The bastion presented its {HostKeyType} key {Fingerprint}: if that is the bastion's key (check on the bastion with ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), set ssh_tunnel.host_key to it.")
                    : new ConnectivityException(FailureCodes.SshHostKeyMismatch,
                        $"The bastion presented its {HostKeyType} key {Fingerprint}, which is not the pinned host_key; Caravan sent nothing. If the bastion's key was changed (or you pinned another of its keys: pin its {HostKeyType} one), update ssh_tunnel.host_key; otherwise something is impersonating the bastion.");
            }

            return exception switch
            {
                SshAuthenticationException => new ConnectivityException(FailureCodes.AuthFailed,
                    $"The bastion refused {_settings.Username} with {Method} ({exception.Message}).", exception),
                System.Net.Sockets.SocketException socket => NetworkPath.Refused(socket, _settings.BastionPort),
                SshOperationTimeoutException or TimeoutException => new ConnectivityException(FailureCodes.Timeout,
                    phase == SshConnect ? "The bastion did not answer in time." : "The bastion did not finish the SSH handshake in time.", exception),
                OperationCanceledException when cancellationToken.IsCancellationRequested => new ConnectivityException(FailureCodes.Timeout,
                    "The bastion did not answer in time.", exception),
                SshConnectionException when phase == SshConnect => new ConnectivityException(FailureCodes.DriverError,
                    $"The server at {_settings.BastionHost}:{_settings.BastionPort} did not open an SSH session ({exception.Message}). Check the bastion's host and port.", exception),
                SshException => new ConnectivityException(FailureCodes.DriverError, $"The SSH session failed: {exception.Message}", exception),
                _ => new ConnectivityException(FailureCodes.DriverError, $"The SSH session failed: {exception.Message}", exception),
            };
        }

        /// <summary>
        /// With a pinned key line, the session asks only for that kind of host key, so a bastion with
        /// several (one per type) shows the pinned one. A fingerprint does not say its type.
        /// </summary>
        private static void RestrictHostKeyAlgorithms(Renci.SshNet.ConnectionInfo info, string? pinned)
        {
            var type = pinned?.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [var first, _, ..] && !first.StartsWith(SshHostKey.FingerprintPrefix, StringComparison.Ordinal)
                ? first
                : null;
            if (type is null)
            {
                return;
            }

            string[] wanted = type == "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
            foreach (var name in info.HostKeyAlgorithms.Keys.ToList())
            {
                if (!wanted.Contains(name, StringComparer.Ordinal))
                {
                    info.HostKeyAlgorithms.Remove(name);
                }
            }
        }
    }

    /// <summary>An open session and its forwarded port.</summary>
    private sealed class Tunnel : IDisposable
    {
        private readonly SshClient _client;
        private readonly ForwardedPortLocal _forward;
        private readonly PrivateKeyFile? _key;
        private readonly long _generation = Interlocked.Increment(ref s_generation);
        private long _lastUsed = Environment.TickCount64;

        public Tunnel(SshClient client, ForwardedPortLocal forward, PrivateKeyFile? key, IPAddress bastion, string serverVersion,
            string hostKeyType, string fingerprint, ILogger logger)
        {
            _client = client;
            _forward = forward;
            _key = key;
            Bastion = bastion;
            ServerVersion = serverVersion;
            HostKeyType = hostKeyType;
            Fingerprint = fingerprint;
            forward.RequestReceived += (_, e) =>
            {
                // Only this process's own connections go through; anything else is closed before
                // the bastion is asked for anything.
                var peer = new IPEndPoint(IPAddress.Parse(e.OriginatorHost), (int)e.OriginatorPort);
                if (!OwnConnections.IsOwn(peer, new IPEndPoint(IPAddress.Loopback, (int)_forward.BoundPort)))
                {
                    throw new ForeignConnectionException();
                }

                Touch();
            };
            forward.Exception += (_, e) =>
            {
                if (e.Exception is ForeignConnectionException)
                {
                    logger.LogWarning("Refused a connection to an SSH tunnel's local port from outside Caravan");
                }
                else
                {
                    LastChannelFailure = e.Exception.Message;
                }
            };
        }

        public IPAddress Bastion { get; }

        public string ServerVersion { get; }

        public string HostKeyType { get; }

        public string Fingerprint { get; }

        /// <summary>Why the bastion last refused to open a channel to the database, if it did.</summary>
        public string? LastChannelFailure { get; private set; }

        public bool IsOpen => _client.IsConnected && _forward.IsStarted;

        public int Port => (int)_forward.BoundPort;

        public TimeSpan IdleFor => TimeSpan.FromMilliseconds(Environment.TickCount64 - Interlocked.Read(ref _lastUsed));

        public void Touch() => Interlocked.Exchange(ref _lastUsed, Environment.TickCount64);

        public DatabaseEndpoint Endpoint(string host) =>
            new(host, IPAddress.Loopback, (int)_forward.BoundPort, $"{KeyPrefix}{_generation}:{_forward.BoundPort}");

        public static string Describe(TunnelSettings settings) =>
            $"Connections to {settings.TargetHost}:{settings.TargetPort} go through the bastion (the bastion resolves the host), from a local port only Caravan can use.";

        public void Dispose()
        {
            try
            {
                _forward.Stop();
            }
            catch (Exception exception) when (exception is SshException or ObjectDisposedException or InvalidOperationException)
            {
                // The session is gone already.
            }

            _forward.Dispose();
            _client.Dispose();
            _key?.Dispose();
        }
    }

    private sealed class ForeignConnectionException() : Exception("A connection from outside Caravan was refused.");
}
