using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Connectivity;

/// <summary>
/// Which addresses Caravan may connect to on a user's behalf. Checked against the address that is
/// then connected to, never against a name, so DNS cannot change the answer between the check
/// and the connection. Link-local ranges (where cloud metadata services live), the other metadata
/// and cloud-agent addresses, the unspecified addresses and known metadata names are refused by
/// default; loopback and private ranges are allowed, because self-hosted users reach their own
/// databases there. An IPv6 address that carries an IPv4 address (mapped, compatible, NAT64, 6to4,
/// Teredo, ISATAP) may reach that IPv4 address, so it must pass as that address too.
/// </summary>
public sealed class EgressPolicy
{
    public static readonly string[] BuiltInDeny =
    [
        // Link-local: AWS, GCP, Azure, OCI, Alibaba and others serve instance metadata at 169.254.169.254,
        // ECS and EKS their task and pod credentials at 169.254.170.x.
        "169.254.0.0/16", "fe80::/10",

        // "This network" and the unspecified addresses, which reach the local machine.
        "0.0.0.0/8", "::/128",

        // IETF protocol assignments, where no database lives: Oracle Cloud's metadata is 192.0.0.192.
        "192.0.0.0/24",

        // Alibaba Cloud metadata; Azure's WireServer (the agent's channel to the host).
        "100.100.100.200/32", "168.63.129.16/32",

        // AWS's block of instance services over IPv6 (metadata ::254, EKS pod identity ::23, DNS ::253,
        // time ::123); GCP's metadata over IPv6.
        "fd00:ec2::/32", "fd20:ce::254/128",
    ];

    private static readonly HashSet<string> MetadataNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal",
        "metadata.azure.internal", "metadata.tencentyun.com",
    };

    private static readonly byte[] Nat64 = [0x00, 0x64, 0xff, 0x9b];
    private static readonly byte[] Nat64Local = [0x00, 0x64, 0xff, 0x9b, 0x00, 0x01];
    private static readonly byte[] Teredo = [0x20, 0x01, 0x00, 0x00];

    private readonly IReadOnlyList<IPNetwork> _deny;
    private readonly IReadOnlyList<IPNetwork> _allow;

    public EgressPolicy(IOptions<EgressOptions> options)
    {
        _deny = [.. BuiltInDeny.Select(IPNetwork.Parse), .. ParseList(options.Value.Deny, "Caravan__Egress__Deny")];
        _allow = ParseList(options.Value.Allow, "Caravan__Egress__Allow");
    }

    public static bool IsMetadataName(string host) => MetadataNames.Contains(host.TrimEnd('.'));

    /// <summary>
    /// Whether Caravan may connect to <paramref name="address"/>: the address itself and every IPv4
    /// address it carries must each be allowed, or not denied. An embedded form is thus refused
    /// whenever its IPv4 address is, and opened by allowing that IPv4 address.
    /// </summary>
    public bool Allows(IPAddress address)
    {
        foreach (var form in Forms(address))
        {
            if (!_allow.Any(n => n.Contains(form)) && _deny.Any(n => n.Contains(form)))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The address, and for an IPv6 address each IPv4 address a packet to it may reach.</summary>
    public static IReadOnlyList<IPAddress> Forms(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return [address];
        }

        var forms = new List<IPAddress> { address };
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out _);
        if (b[..10].IndexOfAnyExcept((byte)0) < 0 && b[10] == 0xff && b[11] == 0xff)
        {
            // IPv4-mapped ::ffff:a.b.c.d: a dual-stack socket connects to the IPv4 address itself.
            forms.Add(V4(b[12..]));
        }
        else if (b[..12].IndexOfAnyExcept((byte)0) < 0 && BinaryPrimitives.ReadUInt32BigEndian(b[12..]) > 1)
        {
            // IPv4-compatible ::a.b.c.d (deprecated; automatic tunnels), but not :: or ::1.
            forms.Add(V4(b[12..]));
        }
        else if (b[..8].IndexOfAnyExcept((byte)0) < 0 && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0)
        {
            // IPv4-translated ::ffff:0:a.b.c.d (SIIT, RFC 7915).
            forms.Add(V4(b[12..]));
        }
        else if (b[..4].SequenceEqual(Nat64) && b[4..12].IndexOfAnyExcept((byte)0) < 0)
        {
            // NAT64's well-known prefix 64:ff9b::/96 (RFC 6052).
            forms.Add(V4(b[12..]));
        }
        else if (b[..6].SequenceEqual(Nat64Local))
        {
            // NAT64's local-use block 64:ff9b:1::/48 (RFC 8215): the network chooses a prefix of 48 to
            // 96 bits inside it, and with it where the IPv4 address sits (RFC 6052: around the zero
            // octet 64-71, zeros after it). Every position the address is well-formed for counts, except
            // a reading in 0.0.0.0/8: no NAT64 translates to it, and it is what an address written for
            // one prefix length reads as at the /96 position.
            ReadOnlySpan<byte> at48 = [b[6], b[7], b[9], b[10]], at56 = [b[7], b[9], b[10], b[11]];
            AddTranslated(forms, at48, b[8] == 0 && b[11..].IndexOfAnyExcept((byte)0) < 0);
            AddTranslated(forms, at56, b[8] == 0 && b[12..].IndexOfAnyExcept((byte)0) < 0);
            AddTranslated(forms, b[9..13], b[8] == 0 && b[13..].IndexOfAnyExcept((byte)0) < 0);
            AddTranslated(forms, b[12..], wellFormed: true);
        }
        else if (b[0] == 0x20 && b[1] == 0x02)
        {
            // 6to4 2002:aabb:ccdd::/48: relays tunnel it to a.b.c.d (RFC 3056).
            forms.Add(V4(b[2..6]));
        }
        else if (b[..4].SequenceEqual(Teredo))
        {
            // Teredo 2001:0:ssss:ssss:flags:port:cccc:cccc: the server's IPv4 address, and the client's,
            // which is stored inverted (RFC 4380).
            forms.Add(V4(b[4..8]));
            forms.Add(V4([(byte)~b[12], (byte)~b[13], (byte)~b[14], (byte)~b[15]]));
        }

        if ((b[8] & 0xfd) == 0 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe)
        {
            // An ISATAP interface identifier ::0:5efe:a.b.c.d or ::200:5efe:a.b.c.d, under any prefix (RFC 5214).
            forms.Add(V4(b[12..]));
        }

        return forms;
    }

    public static IReadOnlyList<IPNetwork> ParseList(string? list, string setting)
    {
        var networks = new List<IPNetwork>();
        foreach (var entry in (list ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (IPNetwork.TryParse(entry, out var network))
            {
                networks.Add(network);
            }
            else if (IPAddress.TryParse(entry, out var single))
            {
                networks.Add(new IPNetwork(single, single.AddressFamily == AddressFamily.InterNetwork ? 32 : 128));
            }
            else
            {
                throw new Hosting.StartupFailureException($"{setting}: \"{entry}\" is not a CIDR range such as 10.0.0.0/8 or fd00::/8.");
            }
        }

        return networks;
    }

    private static IPAddress V4(ReadOnlySpan<byte> bytes) => new(bytes);

    private static void AddTranslated(List<IPAddress> forms, ReadOnlySpan<byte> v4, bool wellFormed)
    {
        if (wellFormed && v4[0] != 0)
        {
            forms.Add(V4(v4));
        }
    }
}
