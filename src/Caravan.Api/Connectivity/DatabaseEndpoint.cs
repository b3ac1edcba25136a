using System.Net;

namespace Caravan.Api.Connectivity;

/// <summary>
/// Where a driver connects for a source: a checked <paramref name="Address"/> and
/// <paramref name="Port"/> (a tunnel's forwarded port on loopback), the <paramref name="Host"/> the
/// user named (TLS checks the server's certificate against it), and a <paramref name="Key"/> that
/// changes whenever the way does (a pool made for one endpoint is never used for another).
/// </summary>
public sealed record DatabaseEndpoint(string Host, IPAddress Address, int Port, string Key)
{
    /// <summary>The database reached directly at a checked address.</summary>
    public static DatabaseEndpoint Direct(string host, IPAddress address, int port) => new(host, address, port, $"{address}:{port}");

    /// <summary>Whether the connection goes through an SSH tunnel.</summary>
    public bool Tunnelled => Key.StartsWith(SshTunnels.KeyPrefix, StringComparison.Ordinal);
}
