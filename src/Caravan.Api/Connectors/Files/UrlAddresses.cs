using System.Net;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// Which addresses URL imports may download from. Stricter than the database egress policy: a user
/// names a database they mean to reach, often on the operator's own network, while a URL import is
/// a fetch Caravan makes for anyone who can create a source, from inside that network. So loopback,
/// private, shared (CGNAT), link-local, multicast and reserved addresses are refused unless
/// <c>Caravan__Files__UrlAllow</c> names them, and cloud metadata addresses are refused whatever it
/// says. An IPv6 address carrying an IPv4 address (<see cref="EgressPolicy.Forms"/>) must pass as
/// that address too.
/// </summary>
public sealed class UrlAddresses
{
    public const string AllowSetting = "Caravan__Files__UrlAllow";

    /// <summary>
    /// Addresses that hand out instance credentials or talk to the cloud's agent (the metadata entries
    /// of <see cref="EgressPolicy.BuiltInDeny"/>). Refused even when UrlAllow covers them: an operator
    /// who opens 169.254.0.0/16 for a link-local file server must not thereby let every user read the
    /// instance's credentials.
    /// </summary>
    private static readonly IPNetwork[] Metadata =
    [
        .. new[]
        {
            "169.254.169.254/32", "169.254.170.0/24", "192.0.0.192/32", "100.100.100.200/32", "168.63.129.16/32",
            "fd00:ec2::/32", "fd20:ce::254/128",
        }.Select(IPNetwork.Parse),
    ];

    private static readonly (IPNetwork Network, string Kind)[] RefusedByDefault =
    [
        .. Ranges("a loopback address", "127.0.0.0/8", "::1/128"),
        .. Ranges("a private address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
        .. Ranges("a shared (carrier-grade NAT) address", "100.64.0.0/10"),
        .. Ranges("a link-local address", "169.254.0.0/16", "fe80::/10"),
        .. Ranges("an unspecified address, which reaches this machine", "0.0.0.0/8", "::/128"),
        .. Ranges("a multicast address", "224.0.0.0/4", "ff00::/8"),
        .. Ranges("a reserved address", "240.0.0.0/4", "192.0.0.0/24"),

        // Whatever the database egress policy refuses outright is refused here by default too.
        .. Ranges("a reserved address", EgressPolicy.BuiltInDeny),
    ];

    private readonly IReadOnlyList<IPNetwork> _allow;

    public UrlAddresses(string? urlAllow) => _allow = EgressPolicy.ParseList(urlAllow, AllowSetting);

    /// <summary>A metadata service's host name, refused before it is even resolved.</summary>
    public static bool IsMetadataName(string host) => EgressPolicy.IsMetadataName(host);

    /// <summary>
    /// Why <paramref name="address"/> is refused (such as "127.0.0.1, a loopback address; ..."), or
    /// null when URL imports may connect to it.
    /// </summary>
    public string? Refusal(IPAddress address)
    {
        var forms = EgressPolicy.Forms(address);
        for (var i = 0; i < forms.Count; i++)
        {
            var form = forms[i];
            var carried = i == 0 ? "," : $", which carries {form},";
            if (Metadata.Any(n => n.Contains(form)))
            {
                return $"{address}{carried} a cloud metadata address; Caravan never downloads from it";
            }

            if (_allow.Any(n => n.Contains(form)))
            {
                continue;
            }

            foreach (var (network, kind) in RefusedByDefault)
            {
                if (network.Contains(form))
                {
                    return $"{address}{carried} {kind}; {AllowSetting} can allow it";
                }
            }
        }

        return null;
    }

    private static IEnumerable<(IPNetwork, string)> Ranges(string kind, params string[] ranges) =>
        ranges.Select(r => (IPNetwork.Parse(r), kind));
}
