using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Caravan.Api.Connectivity;

/// <summary>
/// A SOCKS5 proxy on the loopback interface, alive for one test or discovery, for drivers that
/// pick their own hosts (MongoDB: SRV records, replica set members) and offer no way to open the
/// socket themselves. Every CONNECT is resolved, checked against the egress policy and connected
/// to the checked address here (see <see cref="NetworkPath"/>); refused ones are remembered so the
/// driver's generic "could not connect" becomes the real reason. The driver still does TLS end to
/// end through the tunnel, against the host name it asked for.
/// </summary>
public sealed class EgressProxy : IAsyncDisposable
{
    private const byte Version = 5;
    private readonly NetworkPath _network;
    private readonly (string Host, int Port, DatabaseEndpoint Endpoint)? _tunnel;
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Socket, bool> _open = new();
    private readonly Task _accepting;
    private int _connections;

    public EgressProxy(NetworkPath network)
        : this(network, null)
    {
    }

    /// <summary>
    /// A proxy for a source reached through an SSH tunnel: the driver's connections to the source's
    /// host and port go to the tunnel's <paramref name="endpoint"/>; no other host is reachable.
    /// </summary>
    public EgressProxy(NetworkPath network, string host, int port, DatabaseEndpoint endpoint)
        : this(network, (host, port, endpoint))
    {
    }

    private EgressProxy(NetworkPath network, (string Host, int Port, DatabaseEndpoint Endpoint)? tunnel)
    {
        _network = network;
        _tunnel = tunnel;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    /// <summary>The last connection this proxy refused or could not make, as a stable failure.</summary>
    public ConnectivityException? LastFailure { get; private set; }

    /// <summary>How many connections were made through the proxy.</summary>
    public int Connections => Volatile.Read(ref _connections);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        foreach (var socket in _open.Keys)
        {
            socket.Dispose();
        }

        try
        {
            await _accepting;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception exception) when (exception is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        _open[client] = true;
        Socket? upstream = null;
        try
        {
            using var stream = new NetworkStream(client, ownsSocket: false);
            var token = _stop.Token;
            var (host, port) = await ReadRequestAsync(stream, token);
            if (host is null)
            {
                return;
            }

            try
            {
                upstream = await ConnectAsync(host, port, token);
            }
            catch (ConnectivityException failure)
            {
                LastFailure = failure;
                await ReplyAsync(stream, failure.Code switch
                {
                    FailureCodes.EgressDenied => 2,
                    FailureCodes.PortClosed => 5,
                    FailureCodes.HostUnresolvable or FailureCodes.Timeout => 4,
                    _ => 1,
                }, token);
                return;
            }

            _open[upstream] = true;
            Interlocked.Increment(ref _connections);
            await ReplyAsync(stream, 0, token);
            using var remote = new NetworkStream(upstream, ownsSocket: false);
            var outbound = stream.CopyToAsync(remote, token);
            var inbound = remote.CopyToAsync(stream, token);
            await Task.WhenAny(outbound, inbound);
        }
        catch (Exception exception) when (exception is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The driver or the database went away; the tunnel ends with it.
        }
        finally
        {
            if (upstream is not null)
            {
                _open.TryRemove(upstream, out _);
                upstream.Dispose();
            }

            _open.TryRemove(client, out _);
            client.Dispose();
        }
    }

    private async Task<Socket> ConnectAsync(string host, int port, CancellationToken cancellationToken)
    {
        IPAddress address;
        if (_tunnel is var (tunnelHost, tunnelPort, endpoint))
        {
            if (!string.Equals(host.Trim('[', ']'), tunnelHost.Trim('[', ']'), StringComparison.OrdinalIgnoreCase) || port != tunnelPort)
            {
                throw new ConnectivityException(FailureCodes.EgressDenied,
                    $"Through the SSH tunnel only {tunnelHost}:{tunnelPort} is reachable, and the driver asked for {host}:{port} (another member of a replica set?).");
            }

            (address, port) = (endpoint.Address, endpoint.Port);
        }
        else
        {
            address = await _network.ResolveAllowedAsync(host, cancellationToken);
        }

        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(_network.ConnectLimit);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(address, port), limit.Token);
            return socket;
        }
        catch (SocketException exception)
        {
            socket.Dispose();
            throw NetworkPath.Refused(exception, port);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw new ConnectivityException(FailureCodes.Timeout, $"{host} did not accept a connection on port {port} in time.");
        }
    }

    /// <summary>Reads the greeting and a CONNECT request (RFC 1928, no authentication); null host when refused.</summary>
    private static async Task<(string? Host, int Port)> ReadRequestAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var head = new byte[2];
        await stream.ReadExactlyAsync(head, cancellationToken);
        var methods = new byte[head[1]];
        await stream.ReadExactlyAsync(methods, cancellationToken);
        if (head[0] != Version || !methods.Contains((byte)0))
        {
            await stream.WriteAsync(new byte[] { Version, 0xFF }, cancellationToken);
            return (null, 0);
        }

        await stream.WriteAsync(new byte[] { Version, 0 }, cancellationToken);
        var request = new byte[4];
        await stream.ReadExactlyAsync(request, cancellationToken);
        string host;
        switch (request[3])
        {
            case 1:
                var v4 = new byte[4];
                await stream.ReadExactlyAsync(v4, cancellationToken);
                host = new IPAddress(v4).ToString();
                break;
            case 4:
                var v6 = new byte[16];
                await stream.ReadExactlyAsync(v6, cancellationToken);
                host = new IPAddress(v6).ToString();
                break;
            case 3:
                var length = new byte[1];
                await stream.ReadExactlyAsync(length, cancellationToken);
                var name = new byte[length[0]];
                await stream.ReadExactlyAsync(name, cancellationToken);
                host = Encoding.ASCII.GetString(name);
                break;
            default:
                await ReplyAsync(stream, 8, cancellationToken);
                return (null, 0);
        }

        var portBytes = new byte[2];
        await stream.ReadExactlyAsync(portBytes, cancellationToken);
        if (request[0] != Version || request[1] != 1)
        {
            await ReplyAsync(stream, 7, cancellationToken);
            return (null, 0);
        }

        return (host, BinaryPrimitives.ReadUInt16BigEndian(portBytes));
    }

    private static async Task ReplyAsync(NetworkStream stream, byte code, CancellationToken cancellationToken) =>
        await stream.WriteAsync(new byte[] { Version, code, 0, 1, 0, 0, 0, 0, 0, 0 }, cancellationToken);
}
