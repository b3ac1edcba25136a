using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Connectivity;

/// <summary>
/// Which addresses Caravan may connect to on a user's behalf. Checked against the address that is
/// then connected to, never against a name, so DNS cannot change the answer between the check
/// and the connection. Link-local ranges (where cloud metadata services live), the unspecified
/// addresses and known metadata names are refused by default; loopback and private ranges are
/// allowed, because self-hosted users reach their own databases there.
/// </summary>
public sealed class EgressPolicy
{
    public static readonly string[] BuiltInDeny =
    [
        "169.254.0.0/16", "fe80::/10", "0.0.0.0/32", "::/128", "100.100.100.200/32", "fd00:ec2::254/128",
    ];

    private static readonly HashSet<string> MetadataNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal",
        "metadata.azure.internal", "metadata.tencentyun.com",
    };

    private readonly IReadOnlyList<IPNetwork> _deny;
    private readonly IReadOnlyList<IPNetwork> _allow;

    public EgressPolicy(IOptions<EgressOptions> options)
    {
        _deny = [.. BuiltInDeny.Select(IPNetwork.Parse), .. ParseList(options.Value.Deny, "Caravan__Egress__Deny")];
        _allow = ParseList(options.Value.Allow, "Caravan__Egress__Allow");
        AllowLocalFiles = options.Value.AllowLocalFiles;
    }

    public bool AllowLocalFiles { get; }

    public static bool IsMetadataName(string host) => MetadataNames.Contains(host.TrimEnd('.'));

    public bool Allows(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (_allow.Any(n => n.Contains(address)))
        {
            return true;
        }

        return !_deny.Any(n => n.Contains(address));
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
}
