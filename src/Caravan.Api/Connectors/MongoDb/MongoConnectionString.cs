using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace Caravan.Api.Connectors.MongoDb;

/// <summary>
/// Reads a MongoDB connection string (mongodb:// with one or more hosts, or mongodb+srv:// with
/// one SRV name) into the parts Caravan stores.
/// </summary>
public static class MongoConnectionString
{
    private const string Scheme = "mongodb://";
    private const string SrvScheme = "mongodb+srv://";

    /// <summary>
    /// Parses <paramref name="value"/>. On failure <paramref name="error"/> is one of the
    /// <see cref="ConnectionStringErrors"/> messages and never contains any part of the input.
    /// </summary>
    public static bool TryParse(
        string value,
        [NotNullWhen(true)] out MongoConnectionInfo? result,
        [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(value);
        error = Read(value.Trim(), out result);
        return error is null;
    }

    private static string? Read(string text, out MongoConnectionInfo? result)
    {
        result = null;
        if (text.Length == 0)
        {
            return ConnectionStringErrors.Unparseable;
        }

        bool isSrv;
        if (text.StartsWith(SrvScheme, StringComparison.OrdinalIgnoreCase))
        {
            isSrv = true;
            text = text[SrvScheme.Length..];
        }
        else if (text.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            isSrv = false;
            text = text[Scheme.Length..];
        }
        else
        {
            return ConnectionStringErrors.MongoScheme;
        }

        // As for Postgres, the authority ends at the first '/' or '?' and the user info at the last
        // '@' before it, which tolerates an unencoded '@' in a password.
        var authorityEnd = text.AsSpan().IndexOfAny('/', '?');
        var authority = authorityEnd < 0 ? text : text[..authorityEnd];
        var tail = authorityEnd < 0 ? "" : text[authorityEnd..];

        string? username = null;
        var hasPassword = false;
        var at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            var userInfo = authority[..at];
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            hasPassword = colon >= 0;

            // The password is decoded only to reject malformed escapes, as the drivers would.
            if (!ConnectionStringSyntax.TryPercentDecode(colon < 0 ? userInfo : userInfo[..colon], out var user)
                || user.Length == 0
                || (hasPassword && !ConnectionStringSyntax.TryPercentDecode(userInfo[(colon + 1)..], out _)))
            {
                return ConnectionStringErrors.Unparseable;
            }

            username = user;
        }

        var hostList = authority[(at + 1)..];
        if (hostList.Length == 0)
        {
            return ConnectionStringErrors.NoHost;
        }

        var hosts = new List<(string Host, string? Port)>();
        foreach (var entry in hostList.Split(','))
        {
            if (!TrySplitHost(entry, out var host, out var port))
            {
                return ConnectionStringErrors.Unparseable;
            }

            hosts.Add((host, port));
        }

        if (hosts.Any(h => h.Host.Length == 0))
        {
            return hosts.Count == 1 ? ConnectionStringErrors.NoHost : ConnectionStringErrors.Unparseable;
        }

        // SRV records supply the hosts and ports, so the string can only name the record.
        if (isSrv && (hosts.Count != 1 || hosts[0].Port is not null))
        {
            return ConnectionStringErrors.SrvShape;
        }

        var endpoints = new List<(string Host, int? Port)>(hosts.Count);
        foreach (var (host, portText) in hosts)
        {
            if (HostNames.Check(host) is { } hostMessage)
            {
                return ConnectionStringErrors.InvalidHost(hostMessage);
            }

            int? port = null;
            if (portText is not null)
            {
                if (!ConnectionStringSyntax.TryParsePort(portText, out var number))
                {
                    return ConnectionStringErrors.InvalidPort;
                }

                port = number;
            }

            // An SRV lookup needs a DNS name; for a host that passed the check above, parsing as an
            // address succeeds exactly for IP literals.
            var normalized = HostNames.Normalize(host);
            if (isSrv && IPAddress.TryParse(normalized, out _))
            {
                return ConnectionStringErrors.SrvShape;
            }

            endpoints.Add((normalized, port));
        }

        var queryStart = tail.IndexOf('?', StringComparison.Ordinal);
        var path = queryStart < 0 ? tail : tail[..queryStart];
        string? database = null;
        if (path.Length > 1)
        {
            if (!ConnectionStringSyntax.TryPercentDecode(path[1..], out var decoded))
            {
                return ConnectionStringErrors.Unparseable;
            }

            database = decoded;
        }

        var query = new List<KeyValuePair<string, string>>();
        if (queryStart >= 0 && !ConnectionStringSyntax.TryReadQuery(tail[(queryStart + 1)..], query))
        {
            return ConnectionStringErrors.Unparseable;
        }

        var options = new OrderedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, optionValue) in query)
        {
            options[key] = optionValue;
        }

        result = new MongoConnectionInfo(isSrv, endpoints, username, hasPassword, database, options);
        return null;
    }

    /// <summary>Splits "host", "host:port", "[v6]" or "[v6]:port"; false when the shape is wrong.</summary>
    private static bool TrySplitHost(string entry, out string host, out string? port)
    {
        host = entry;
        port = null;
        if (entry.StartsWith('['))
        {
            var close = entry.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                return false;
            }

            host = entry[..(close + 1)];
            var after = entry[(close + 1)..];
            if (after.Length == 0)
            {
                return true;
            }

            port = after[1..];
            return after[0] == ':';
        }

        var colon = entry.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            // More than one colon is an IPv6 address missing its brackets.
            if (entry.IndexOf(':', colon + 1) >= 0)
            {
                return false;
            }

            host = entry[..colon];
            port = entry[(colon + 1)..];
        }

        return true;
    }

    /// <summary>
    /// The decoded password of a connection string that <see cref="TryParse"/> accepted, or null;
    /// for checks such as refusing a placeholder. Never put it in a message.
    /// </summary>
    public static string? PasswordOf(string value) =>
        RawPasswordOf(value) is { } raw && ConnectionStringSyntax.TryPercentDecode(raw, out var password) ? password : null;

    /// <summary>The password as written in the connection string (percent-encoded), or null.</summary>
    public static string? RawPasswordOf(string value)
    {
        var schemeEnd = value.IndexOf("://", StringComparison.Ordinal);
        var text = schemeEnd < 0 ? value : value[(schemeEnd + 3)..];
        var authorityEnd = text.AsSpan().IndexOfAny('/', '?');
        var authority = authorityEnd < 0 ? text : text[..authorityEnd];
        var at = authority.LastIndexOf('@');
        var colon = at < 0 ? -1 : authority.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 || colon > at ? null : authority[(colon + 1)..at];
    }
}
