using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.RegularExpressions;

namespace Caravan.Api.Connectors.Postgres;

/// <summary>
/// Reads a libpq connection string, either a postgres:// / postgresql:// URI or key=value pairs,
/// into the parts Caravan stores. Only single-host strings are accepted.
/// </summary>
public static partial class PostgresConnectionString
{
    /// <summary>
    /// Parses <paramref name="value"/>. On failure <paramref name="error"/> is one of the
    /// <see cref="ConnectionStringErrors"/> messages and never contains any part of the input.
    /// </summary>
    public static bool TryParse(
        string value,
        [NotNullWhen(true)] out ParsedConnectionString? result,
        [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(value);
        result = null;

        var text = value.Trim();
        if (text.Length == 0)
        {
            error = ConnectionStringErrors.Unparseable;
            return false;
        }

        var parts = new Parts();
        var scheme = SchemePrefix().Match(text);
        if (scheme.Success)
        {
            var name = scheme.Groups["name"].Value;
            if (!name.Equals("postgres", StringComparison.OrdinalIgnoreCase) && !name.Equals("postgresql", StringComparison.OrdinalIgnoreCase))
            {
                error = ConnectionStringErrors.PostgresScheme;
                return false;
            }

            error = ReadUri(text[scheme.Length..], parts);
        }
        else
        {
            error = ReadKeywords(text, parts);
        }

        error ??= parts.Resolve(out result);
        return error is null;
    }

    /// <summary>
    /// Reads what follows "scheme://": [user[:password]@][host][:port][/dbname][?params].
    /// The authority ends at the first '/' or '?', and the user info at the last '@' before that,
    /// so a password holding a raw '@' still parses, as libpq users often paste them unencoded.
    /// </summary>
    private static string? ReadUri(string rest, Parts parts)
    {
        var authorityEnd = rest.AsSpan().IndexOfAny('/', '?');
        var authority = authorityEnd < 0 ? rest : rest[..authorityEnd];
        var tail = authorityEnd < 0 ? "" : rest[authorityEnd..];

        var at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            var userInfo = authority[..at];
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            var rawUser = colon < 0 ? userInfo : userInfo[..colon];
            if (!ConnectionStringSyntax.TryPercentDecode(rawUser, out var user))
            {
                return ConnectionStringErrors.Unparseable;
            }

            parts.Set("user", user);
            if (colon >= 0)
            {
                if (!ConnectionStringSyntax.TryPercentDecode(userInfo[(colon + 1)..], out var password))
                {
                    return ConnectionStringErrors.Unparseable;
                }

                parts.Set("password", password);
            }
        }

        var hostAndPort = authority[(at + 1)..];
        if (hostAndPort.Contains(',', StringComparison.Ordinal))
        {
            return ConnectionStringErrors.MultipleHosts;
        }

        if (ReadHostAndPort(hostAndPort, parts) is { } hostError)
        {
            return hostError;
        }

        var queryStart = tail.IndexOf('?', StringComparison.Ordinal);
        var path = queryStart < 0 ? tail : tail[..queryStart];
        if (path.Length > 1)
        {
            if (!ConnectionStringSyntax.TryPercentDecode(path[1..], out var database))
            {
                return ConnectionStringErrors.Unparseable;
            }

            parts.Set("dbname", database);
        }

        // Query parameters are applied last so they override the URI's components, as in libpq.
        var query = new List<KeyValuePair<string, string>>();
        if (queryStart >= 0 && !ConnectionStringSyntax.TryReadQuery(tail[(queryStart + 1)..], query))
        {
            return ConnectionStringErrors.Unparseable;
        }

        foreach (var (key, parameter) in query)
        {
            parts.Set(key, parameter);
        }

        return null;
    }

    private static string? ReadHostAndPort(string hostAndPort, Parts parts)
    {
        string host;
        string? port = null;
        if (hostAndPort.StartsWith('['))
        {
            var close = hostAndPort.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                return ConnectionStringErrors.Unparseable;
            }

            host = hostAndPort[..(close + 1)];
            var after = hostAndPort[(close + 1)..];
            if (after.Length > 0)
            {
                if (after[0] != ':')
                {
                    return ConnectionStringErrors.Unparseable;
                }

                port = after[1..];
            }
        }
        else
        {
            // A second colon can only be an IPv6 address without the brackets a URI requires.
            var colon = hostAndPort.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0 && hostAndPort.IndexOf(':', colon + 1) >= 0)
            {
                return ConnectionStringErrors.Unparseable;
            }

            host = colon < 0 ? hostAndPort : hostAndPort[..colon];
            port = colon < 0 ? null : hostAndPort[(colon + 1)..];
        }

        if (!ConnectionStringSyntax.TryPercentDecode(host, out var decodedHost))
        {
            return ConnectionStringErrors.Unparseable;
        }

        if (decodedHost.Length > 0)
        {
            parts.Set("host", decodedHost);
        }

        if (port is not null)
        {
            parts.Set("port", port);
        }

        return null;
    }

    /// <summary>
    /// Reads libpq key/value pairs: whitespace-separated "key = value", where a value is either a
    /// run of non-space characters or single-quoted, and a backslash escapes the next character.
    /// </summary>
    private static string? ReadKeywords(string text, Parts parts)
    {
        var i = 0;
        var value = new StringBuilder();
        while (true)
        {
            SkipWhiteSpace(text, ref i);
            if (i == text.Length)
            {
                return null;
            }

            var keyStart = i;
            while (i < text.Length && text[i] != '=' && !char.IsWhiteSpace(text[i]))
            {
                i++;
            }

            var key = text[keyStart..i];
            SkipWhiteSpace(text, ref i);
            if (!ConnectionStringSyntax.IsParameterName(key) || i == text.Length || text[i] != '=')
            {
                return ConnectionStringErrors.Unparseable;
            }

            i++;
            SkipWhiteSpace(text, ref i);
            value.Clear();
            if (!(i < text.Length && text[i] == '\'' ? ReadQuoted(text, ref i, value) : ReadUnquoted(text, ref i, value)))
            {
                return ConnectionStringErrors.Unparseable;
            }

            parts.Set(key.ToLowerInvariant(), value.ToString());
        }
    }

    private static bool ReadQuoted(string text, ref int i, StringBuilder value)
    {
        i++;
        while (i < text.Length)
        {
            var c = text[i++];
            if (c == '\'')
            {
                // Something glued to the closing quote is more likely a quoting mistake than a new key.
                return i == text.Length || char.IsWhiteSpace(text[i]);
            }

            if (c == '\\')
            {
                if (i == text.Length)
                {
                    return false;
                }

                c = text[i++];
            }

            value.Append(c);
        }

        return false;
    }

    private static bool ReadUnquoted(string text, ref int i, StringBuilder value)
    {
        while (i < text.Length && !char.IsWhiteSpace(text[i]))
        {
            var c = text[i++];
            if (c == '\\')
            {
                if (i == text.Length)
                {
                    return false;
                }

                c = text[i++];
            }

            value.Append(c);
        }

        return true;
    }

    private static void SkipWhiteSpace(string text, ref int i)
    {
        while (i < text.Length && char.IsWhiteSpace(text[i]))
        {
            i++;
        }
    }

    /// <summary>Any "scheme://" prefix, so a URI of another kind gets its own message.</summary>
    [GeneratedRegex(@"\A(?<name>[A-Za-z][A-Za-z0-9+.\-]*)://", RegexOptions.CultureInvariant)]
    private static partial Regex SchemePrefix();

    /// <summary>Collects parameters from either syntax; a later value for a key replaces an earlier one.</summary>
    private sealed class Parts
    {
        private readonly OrderedDictionary<string, string> _options = new(StringComparer.Ordinal);
        private string? _host;
        private string? _hostAddress;
        private string? _port;
        private string? _user;
        private string? _password;
        private string? _database;

        public void Set(string key, string value)
        {
            switch (key)
            {
                case "host": _host = value; break;
                case "hostaddr": _hostAddress = value; break;
                case "port": _port = value; break;
                case "user": _user = value; break;
                case "password": _password = value; break;
                case "dbname": _database = value; break;
                default: _options[key] = value; break;
            }
        }

        public string? Resolve(out ParsedConnectionString? result)
        {
            result = null;

            // libpq takes comma-separated lists in all three; Caravan stores one endpoint.
            if (new[] { _host, _hostAddress, _port }.Any(v => v?.Contains(',', StringComparison.Ordinal) == true))
            {
                return ConnectionStringErrors.MultipleHosts;
            }

            // With both, libpq connects to hostaddr but verifies TLS and auth against host. Caravan
            // keeps only the name, so that the host it validates is the one that ends up stored.
            var host = string.IsNullOrEmpty(_host) ? _hostAddress : _host;
            if (string.IsNullOrEmpty(host))
            {
                return ConnectionStringErrors.NoHost;
            }

            if (HostNames.Check(host) is { } hostMessage)
            {
                return ConnectionStringErrors.InvalidHost(hostMessage);
            }

            // An empty port means the default to libpq, as it does here.
            int? port = null;
            if (!string.IsNullOrEmpty(_port))
            {
                if (!ConnectionStringSyntax.TryParsePort(_port, out var number))
                {
                    return ConnectionStringErrors.InvalidPort;
                }

                port = number;
            }

            result = new ParsedConnectionString(
                HostNames.Normalize(host),
                port,
                NullIfEmpty(_user),
                NullIfEmpty(_password),
                NullIfEmpty(_database),
                _options);
            return null;
        }

        private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
    }
}
