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
public sealed class NetworkPath(EgressPolicy policy, IOptions<ConnectivityOptions> options)
{
    public TimeSpan ConnectLimit => TimeSpan.FromSeconds(Math.Clamp(options.Value.ConnectTimeoutSeconds, 1, 60));

    /// <summary>
    /// Records the <c>resolve</c>, <c>egress</c> and <c>connect</c> steps of a test and returns the
    /// checked address that answered, or null when a step failed.
    /// </summary>
    public async Task<IPAddress?> OpenAsync(TestRun run, string host, int port)
    {
        var addresses = await run.StepAsync("resolve", token => ResolveAsync(host, token), ConnectLimit);
        var allowed = await run.StepAsync("egress", _ => Task.FromResult(Allowed(host, addresses!)));
        return await run.StepAsync("connect", async token =>
        {
            await ProbeAsync(allowed!, port, token);
            return allowed;
        }, ConnectLimit);
    }

    /// <summary>
    /// The same for the source's host (its type's host field) and port: a source without a host
    /// yet fails at <c>resolve</c>. Returns the host and the checked address that answered, or null.
    /// </summary>
    public async Task<(string Host, IPAddress Address)?> OpenAsync(TestRun run, SourceConnection connection)
    {
        if (connection.Host is not { } host)
        {
            await run.FailAsync(TestSteps.Resolve, DriverFailures.Unconfigured());
            return null;
        }

        return await OpenAsync(run, host, connection.Port) is { } address ? (host, address) : null;
    }

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
    /// </summary>
    public SocketsHttpHandler HttpHandler() => new()
    {
        ConnectTimeout = ConnectLimit,
        AllowAutoRedirect = false,
        UseProxy = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectCallback = async (context, token) =>
        {
            var address = await ResolveAllowedAsync(context.DnsEndPoint.Host, token);
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), token);
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
