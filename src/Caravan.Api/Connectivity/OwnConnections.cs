using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Caravan.Api.Connectivity;

/// <summary>
/// Tells whether a connection accepted on a loopback port was opened by this process. A tunnel's
/// forwarded port must serve Caravan's own drivers only: any local process could otherwise guess
/// the port and reach a private database with the tunnel's credentials. The kernel knows which
/// socket is the other end (<c>/proc/net/tcp</c> maps the pair of endpoints to a socket inode), and
/// <c>/proc/self/fd</c> lists the sockets this process holds; the connection is ours only when that
/// socket is among them. Linux only: elsewhere nothing is proven, so nothing is accepted.
/// </summary>
public static class OwnConnections
{
    /// <summary>Whether the kernel's tables this check reads exist here.</summary>
    public static bool Supported => File.Exists("/proc/net/tcp") && Directory.Exists("/proc/self/fd");

    /// <summary>
    /// Whether the client end of the connection from <paramref name="peer"/> to
    /// <paramref name="local"/> (the listener's address and port) is a socket this process holds.
    /// </summary>
    public static bool IsOwn(IPEndPoint peer, IPEndPoint local)
    {
        if (!Supported || !IPAddress.IsLoopback(peer.Address))
        {
            return false;
        }

        // An IPv4 client is an IPv4 socket, or a dual-mode IPv6 one (.NET's TcpClient makes those)
        // that the kernel lists in tcp6 with IPv4-mapped addresses.
        var inode = peer.AddressFamily == AddressFamily.InterNetworkV6
            ? ClientInode("/proc/net/tcp6", Format(peer), Format(local))
            : ClientInode("/proc/net/tcp", Format(peer), Format(local))
              ?? ClientInode("/proc/net/tcp6", Format(Mapped(peer)), Format(Mapped(local)));
        return inode is { } found && HoldsSocket(found);
    }

    /// <summary>
    /// The loopback ports that established connections lead to, on this machine (the kernel's
    /// tables list every process's): a tunnel's port among them is in use by a driver's connection.
    /// </summary>
    public static HashSet<int> ConnectedLoopbackPorts()
    {
        var ports = new HashSet<int>();
        foreach (var table in (string[])["/proc/net/tcp", "/proc/net/tcp6"])
        {
            if (!File.Exists(table))
            {
                continue;
            }

            foreach (var line in File.ReadLines(table).Skip(1))
            {
                // State 01 is ESTABLISHED; the remote address is loopback (IPv4, or IPv4-mapped in tcp6).
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length > 3 && fields[3] == "01" && fields[2].Split(':') is [var address, var port]
                    && (address == "0100007F" || address == "0000000000000000FFFF00000100007F"))
                {
                    ports.Add(int.Parse(port, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                }
            }
        }

        return ports;
    }

    private static IPEndPoint Mapped(IPEndPoint endpoint) =>
        endpoint.AddressFamily == AddressFamily.InterNetwork ? new IPEndPoint(endpoint.Address.MapToIPv6(), endpoint.Port) : endpoint;

    /// <summary>The inode of the socket whose own end is <paramref name="client"/> and whose other end is <paramref name="server"/>.</summary>
    private static string? ClientInode(string table, string client, string server)
    {
        if (!File.Exists(table))
        {
            return null;
        }

        foreach (var line in File.ReadLines(table).Skip(1))
        {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 9 && fields[1] == client && fields[2] == server)
            {
                return fields[9];
            }
        }

        return null;
    }

    private static bool HoldsSocket(string inode)
    {
        var wanted = $"socket:[{inode}]";
        foreach (var descriptor in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(descriptor).LinkTarget == wanted)
                {
                    return true;
                }
            }
            catch (IOException)
            {
                // The descriptor was closed meanwhile.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return false;
    }

    /// <summary>An endpoint as <c>/proc/net/tcp</c> writes it: the address's bytes as the kernel holds them, in hex, then the port.</summary>
    private static string Format(IPEndPoint endpoint)
    {
        var bytes = endpoint.Address.GetAddressBytes();
        var address = new System.Text.StringBuilder(bytes.Length * 2);

        // Each 32-bit word of the address is printed as a host-order (little-endian here) integer.
        for (var word = 0; word < bytes.Length; word += 4)
        {
            for (var i = 3; i >= 0; i--)
            {
                address.Append(bytes[word + i].ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return address + ":" + endpoint.Port.ToString("X4", CultureInfo.InvariantCulture);
    }
}
