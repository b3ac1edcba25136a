using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Caravan.Api.Connectors.SqlServer;

/// <summary>
/// Reads an ADO.NET (SqlClient) or ODBC connection string for SQL Server into the parts Caravan
/// stores. Only TCP endpoints are accepted.
/// </summary>
public static partial class SqlServerConnectionString
{
    /// <summary>
    /// Parses <paramref name="value"/>. On failure <paramref name="error"/> is one of the
    /// <see cref="ConnectionStringErrors"/> messages and never contains any part of the input.
    /// Option values are unquoted: ADO.NET quotes and ODBC braces are removed.
    /// </summary>
    public static bool TryParse(
        string value,
        [NotNullWhen(true)] out ParsedConnectionString? result,
        [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(value);
        result = null;

        if (string.IsNullOrWhiteSpace(value))
        {
            error = ConnectionStringErrors.Unparseable;
            return false;
        }

        // ODBC rules differ from ADO.NET ones mainly in taking {braced} values, which ADO.NET
        // would read as literal text and then split at any ';' inside.
        var useOdbcRules = value.Contains('{', StringComparison.Ordinal) || DriverKey().IsMatch(value);
        var builder = new DbConnectionStringBuilder(useOdbcRules);
        try
        {
            builder.ConnectionString = value;
        }
        catch (ArgumentException)
        {
            // The exception text quotes the input, so only the fixed message goes out.
            error = ConnectionStringErrors.Unparseable;
            return false;
        }

        string? server = null;
        string? database = null;
        string? user = null;
        string? password = null;
        var options = new OrderedDictionary<string, string>(StringComparer.Ordinal);
        foreach (string rawKey in builder.Keys)
        {
            var key = rawKey.Trim().ToLowerInvariant();
            var text = Convert.ToString(builder[rawKey], CultureInfo.InvariantCulture) ?? "";
            if (useOdbcRules)
            {
                text = Unbrace(text);
            }

            switch (key)
            {
                case "server" or "data source" or "address" or "addr" or "network address":
                    server = text;
                    break;
                case "database" or "initial catalog":
                    database = text;
                    break;
                case "user id" or "uid" or "user":
                    user = text;
                    break;
                case "password" or "pwd":
                    password = text;
                    break;
                case "driver":
                    // Which ODBC driver a client had installed says nothing about the server.
                    break;
                default:
                    options[key] = text;
                    break;
            }
        }

        if (!TryReadServer(server, options, out var host, out var port, out error))
        {
            return false;
        }

        result = new ParsedConnectionString(host, port, NullIfEmpty(user), NullIfEmpty(password), NullIfEmpty(database), options);
        return true;
    }

    /// <summary>
    /// Splits a Server value of the form [tcp:]host[\instance][,port]. The named instance goes into
    /// <paramref name="options"/> as "instance", since the client resolves it to a port at connect time.
    /// </summary>
    private static bool TryReadServer(
        string? server,
        OrderedDictionary<string, string> options,
        [NotNullWhen(true)] out string? host,
        out int? port,
        [NotNullWhen(false)] out string? error)
    {
        host = null;
        port = null;
        error = null;
        var text = server?.Trim() ?? "";
        if (text.StartsWith("tcp:", StringComparison.OrdinalIgnoreCase))
        {
            text = text[4..].TrimStart();
        }
        else if (NonTcpPrefix().IsMatch(text))
        {
            error = ConnectionStringErrors.TcpOnly;
            return false;
        }

        string? portText = null;
        var comma = text.IndexOf(',', StringComparison.Ordinal);
        if (comma >= 0)
        {
            portText = text[(comma + 1)..].Trim();
            text = text[..comma].TrimEnd();
        }

        var backslash = text.IndexOf('\\', StringComparison.Ordinal);
        if (backslash >= 0)
        {
            var instance = text[(backslash + 1)..];
            if (instance.Length == 0 || instance.Any(c => c == '\\' || char.IsWhiteSpace(c) || char.IsControl(c)))
            {
                error = ConnectionStringErrors.Unparseable;
                return false;
            }

            options["instance"] = instance;
            text = text[..backslash];
        }

        if (text is "." || text.Equals("(local)", StringComparison.OrdinalIgnoreCase) || text.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            text = "localhost";
        }

        if (text.Length == 0)
        {
            error = ConnectionStringErrors.NoServer;
        }
        else if (HostNames.Check(text) is { } hostMessage)
        {
            error = ConnectionStringErrors.InvalidHost(hostMessage);
        }
        else if (portText is not null)
        {
            if (ConnectionStringSyntax.TryParsePort(portText, out var number))
            {
                port = number;
            }
            else
            {
                error = ConnectionStringErrors.InvalidPort;
            }
        }

        if (error is not null)
        {
            return false;
        }

        host = HostNames.Normalize(text);
        return true;
    }

    /// <summary>Removes ODBC braces from a value; inside them "}}" stands for one '}'.</summary>
    private static string Unbrace(string value) =>
        value.Length >= 2 && value[0] == '{' && value[^1] == '}'
            ? value[1..^1].Replace("}}", "}", StringComparison.Ordinal)
            : value;

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    [GeneratedRegex(@"(?:\A|;)\s*driver\s*=", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex DriverKey();

    /// <summary>Named pipes, shared memory, VIA and LocalDB (which runs over named pipes).</summary>
    [GeneratedRegex(@"\A(?:np:|lpc:|via:|\(localdb\))", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex NonTcpPrefix();
}
