using Caravan.Api.Connectors;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Connectivity;

/// <summary>
/// The way from Caravan to a database host: resolve the name once, check every address against
/// the egress policy, connect to an allowed one. Drivers are then handed that address, never the
/// name, so a second DNS answer cannot send them elsewhere (no rebinding between check and connect).
/// </summary>
public sealed class NetworkPath(EgressPolicy policy, IOptions<ConnectivityOptions> options, SshTunnels tunnels)
{
    public TimeSpan ConnectLimit => TimeSpan.FromSeconds(Math.Clamp(options.Value.ConnectTimeoutSeconds, 1, 60));

    /// <summary>
    /// Records the <c>resolve</c>, <c>egress</c> and <c>connect</c> steps of a test and returns the
    /// checked address that answered, or null when a step failed.
    /// </summary>
    public async Task<IPAddress?> OpenAsync(TestRun run, string host, int port)
    {
        var allowed = await CheckAsync(run, host);
        return await run.StepAsync("connect", async token =>
        {
            await ProbeAsync(allowed!, port, token);
            return allowed;
        }, ConnectLimit);
    }

    /// <summary>Records the <c>resolve</c> and <c>egress</c> steps of a test; the checked address, or null when a step failed.</summary>
    public async Task<IPAddress?> CheckAsync(TestRun run, string host)
    {
        var addresses = await run.StepAsync("resolve", token => ResolveAsync(host, token), ConnectLimit);
        return await run.StepAsync("egress", _ => Task.FromResult(Allowed(host, addresses!)));
    }

    /// <summary>
    /// The same for the source's host (its type's host field) and port: a source without a host
    /// yet fails at <c>resolve</c>. Through an <c>ssh_tunnel</c>, the steps are the bastion's
    /// (<see cref="SshTunnels.OpenAsync"/>) and the endpoint is the tunnel's forwarded port.
    /// Returns the endpoint to connect to, or null when a step failed.
    /// </summary>
    public async Task<DatabaseEndpoint?> OpenAsync(TestRun run, SourceConnection connection)
    {
        if (connection.Host is not { } host)
        {
            await run.FailAsync(TestSteps.Resolve, DriverFailures.Unconfigured());
            return null;
        }

        if (SshTunnels.Holds(connection))
        {
            return await tunnels.OpenAsync(run, connection, host, this);
        }

        return await OpenAsync(run, host, connection.Port) is { } address ? DatabaseEndpoint.Direct(host, address, connection.Port) : null;
    }

    /// <summary>
    /// Where discovery and queries connect for a source: its host resolved and checked (never
    /// resolved again by the driver), or, through an <c>ssh_tunnel</c>, the forwarded port of the
    /// source's SSH session, opened or reopened as needed.
    /// </summary>
    public async Task<DatabaseEndpoint> ReachAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        var host = connection.Host ?? throw DriverFailures.Unconfigured();
        if (SshTunnels.Holds(connection))
        {
            return await tunnels.ReachAsync(connection, host, this, cancellationToken);
        }

        return DatabaseEndpoint.Direct(host, await ResolveAllowedAsync(host, cancellationToken), connection.Port);
    }

    /// <summary>The forwarded port of the source's SSH session (opened or reopened as needed), or null for a source without a tunnel.</summary>
    public async Task<DatabaseEndpoint?> TunnelAsync(SourceConnection connection, CancellationToken cancellationToken) =>
        SshTunnels.Holds(connection) ? await ReachAsync(connection, cancellationToken) : null;

    /// <summary>Resolves and checks without recording steps (for discovery and queries).</summary>
    public async Task<IPAddress> ResolveAllowedAsync(string host, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(ConnectLimit);
        return Allowed(host, await ResolveAsync(host, limit.Token));
    }

    /// <summary>
    /// An HTTP handler whose every connection is resolved, checked and made here, so HTTP drivers
    /// get the same protection while TLS still validates the certificate against the host name.
    /// With <paramref name="through"/> (an SSH tunnel's endpoint), every connection goes there
    /// instead: such a handler serves one source's tunnel only.
    /// </summary>
    public SocketsHttpHandler HttpHandler(DatabaseEndpoint? through = null) => new()
    {
        ConnectTimeout = ConnectLimit,
        AllowAutoRedirect = false,
        UseProxy = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectCallback = async (context, token) =>
        {
            var address = through?.Address ?? await ResolveAllowedAsync(context.DnsEndPoint.Host, token);
            var port = through?.Port ?? context.DnsEndPoint.Port;
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), token);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException exception)
            {
                socket.Dispose();
                throw Refused(exception, context.DnsEndPoint.Port);
            }
        },
    };

    private static async Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        var name = host.Trim('[', ']');
        if (EgressPolicy.IsMetadataName(name))
        {
            throw new ConnectivityException(FailureCodes.EgressDenied,
                "This host is a cloud metadata service; Caravan does not connect to it.", step: "egress");
        }

        if (IPAddress.TryParse(name, out var literal))
        {
            return [literal];
        }

        try
        {
            var addresses = await Dns.GetHostAddressesAsync(name, cancellationToken);
            return addresses.Length > 0
                ? addresses
                : throw new ConnectivityException(FailureCodes.HostUnresolvable, $"The host name {name} has no addresses.");
        }
        catch (SocketException)
        {
            throw new ConnectivityException(FailureCodes.HostUnresolvable, $"The host name {name} could not be resolved. Check its spelling and that Caravan's DNS can see it.");
        }
    }

    private IPAddress Allowed(string host, IPAddress[] addresses)
    {
        foreach (var address in addresses)
        {
            if (policy.Allows(address))
            {
                return address;
            }
        }

        var where = IPAddress.TryParse(host.Trim('[', ']'), out _)
            ? $"The address {host}"
            : $"{host} resolves to {string.Join(", ", addresses.Take(3).Select(a => a.ToString()))}, which";
        throw new ConnectivityException(FailureCodes.EgressDenied,
            $"{where} is not allowed by the egress policy: link-local and metadata addresses are refused unless Caravan__Egress__Allow names them.",
            step: "egress");
    }

    private static async Task ProbeAsync(IPAddress address, int port, CancellationToken cancellationToken)
    {
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(address, port), cancellationToken);
        }
        catch (SocketException exception)
        {
            throw Refused(exception, port);
        }
    }

    public static ConnectivityException Refused(SocketException exception, int port) => exception.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => new ConnectivityException(FailureCodes.PortClosed,
            $"Nothing accepts connections{(port > 0 ? $" on port {port}" : string.Empty)} there. Check the port, and that the database listens on this address.", exception),
        SocketError.TimedOut => new ConnectivityException(FailureCodes.Timeout, "The connection attempt timed out.", exception),
        SocketError.HostUnreachable or SocketError.NetworkUnreachable => new ConnectivityException(FailureCodes.Timeout,
            "The host cannot be reached from Caravan's network.", exception),
        _ => new ConnectivityException(FailureCodes.DriverError, $"The connection failed: {exception.SocketErrorCode}.", exception),
    };
}
