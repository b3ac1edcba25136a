using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Caravan.Api.Connectors;

/// <summary>
/// Validates the host of a connection configuration. Messages never quote the value, so the same
/// check can run on a host taken out of a connection string that also holds a password.
/// </summary>
public static class HostNames
{
    public const string SchemeMessage = "Enter a host name or IP address without a scheme such as \"https://\".";
    public const string SpacesAroundMessage = "Remove the leading or trailing spaces.";
    public const string SpacesInsideMessage = "A host name may not contain spaces or control characters.";
    public const string PathMessage = "Enter a host name or IP address without a path.";
    public const string PortMessage = "Enter the port in the port field, not in the host name.";
    public const string InvalidMessage = "Enter a valid host name or IP address.";

    private const int MaxNameLength = 253;
    private const int MaxLabelLength = 63;

    private static readonly SearchValues<char> HexDigits =
        SearchValues.Create("0123456789abcdefABCDEF");

    /// <summary>Returns null for a valid host, else a message telling the user what to change.</summary>
    public static string? Check(string value)
    {
        ArgumentNullException.ThrowIfNull(value);

        // When a value has several problems, the most specific advice wins.
        if (value.Contains("://", StringComparison.Ordinal))
        {
            return SchemeMessage;
        }

        if (value.Length > 0 && (char.IsWhiteSpace(value[0]) || char.IsWhiteSpace(value[^1])))
        {
            return SpacesAroundMessage;
        }

        if (value.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            return SpacesInsideMessage;
        }

        if (value.AsSpan().IndexOfAny('/', '?', '#') >= 0)
        {
            return PathMessage;
        }

        if (LooksLikeHostAndPort(value))
        {
            return PortMessage;
        }

        return IsValid(value) ? null : InvalidMessage;
    }

    /// <summary>
    /// Removes the square brackets around an IPv6 literal, which URIs require but which are not part
    /// of the address; anything else is returned unchanged.
    /// </summary>
    public static string Normalize(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return IsBracketed(value) ? value[1..^1] : value;
    }

    /// <summary>
    /// The host as it goes into a URL or a <c>host:port</c> pair: an IPv6 literal in square
    /// brackets (drivers refuse it bare, as its colons would read as a port), anything else as is.
    /// </summary>
    public static string ForAuthority(string value)
    {
        var host = Normalize(value);
        return IPAddress.TryParse(host, out var address) && address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{host}]" : host;
    }

    private static bool IsBracketed(string value) =>
        value.Length >= 2 && value[0] == '[' && value[^1] == ']';

    private static bool LooksLikeHostAndPort(string value)
    {
        if (value.StartsWith('['))
        {
            var close = value.IndexOf("]:", StringComparison.Ordinal);
            return close > 0 && IsDigits(value.AsSpan(close + 2));
        }

        var colon = value.IndexOf(':', StringComparison.Ordinal);
        return colon > 0
            && colon == value.LastIndexOf(':')
            && IsDigits(value.AsSpan(colon + 1));
    }

    private static bool IsValid(string value)
    {
        if (IsBracketed(value))
        {
            return IsIPv6(value[1..^1]);
        }

        if (value.Contains(':', StringComparison.Ordinal))
        {
            return IsIPv6(value);
        }

        var name = value.EndsWith('.') ? value[..^1] : value;
        var labels = name.Split('.');

        // A numeric last label can only mean an IPv4 address (no top-level domain is numeric), so
        // typos such as "10.0.0" or "10.0.0.256" are refused instead of being taken as DNS names.
        // Hex labels count as numeric because inet_aton-style resolvers read "0x7f000001" as an
        // address, which would let a name that passed this check reach an unexpected IP.
        return IsNumber(labels[^1]) ? name.Length == value.Length && IsIPv4(labels) : IsDnsName(name, labels);
    }

    private static bool IsNumber(string label) =>
        IsDigits(label)
        || (label.Length >= 2 && label[0] == '0' && (label[1] is 'x' or 'X') && !label.AsSpan(2).ContainsAnyExcept(HexDigits));

    private static bool IsIPv6(string value)
    {
        // IPAddress.TryParse also takes zone IDs, ports and brackets; only plain addresses go through.
        foreach (var c in value)
        {
            if (!char.IsAsciiHexDigit(c) && c != ':' && c != '.')
            {
                return false;
            }
        }

        return value.Contains(':', StringComparison.Ordinal)
            && IPAddress.TryParse(value, out var address)
            && address.AddressFamily == AddressFamily.InterNetworkV6;
    }

    private static bool IsIPv4(string[] parts)
    {
        if (parts.Length != 4)
        {
            return false;
        }

        foreach (var part in parts)
        {
            // Leading zeros are refused because some resolvers read them as octal.
            if (part.Length is 0 or > 3
                || !IsDigits(part)
                || (part.Length > 1 && part[0] == '0')
                || int.Parse(part, CultureInfo.InvariantCulture) > 255)
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsDnsName(string name, string[] labels)
    {
        if (name.Length is 0 or > MaxNameLength)
        {
            return false;
        }

        foreach (var label in labels)
        {
            if (label.Length is 0 or > MaxLabelLength || label[0] == '-' || label[^1] == '-')
            {
                return false;
            }

            foreach (var c in label)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_')
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static bool IsDigits(ReadOnlySpan<char> value)
    {
        if (value.IsEmpty)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return true;
    }
}
