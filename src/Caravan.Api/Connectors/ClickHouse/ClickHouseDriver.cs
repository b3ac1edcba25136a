using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using static Caravan.Api.Connectors.DriverFailures;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors.ClickHouse;

/// <summary>
/// CLICKHOUSE over its HTTP interface (HTTPS when <c>secure</c>), every statement with
/// <c>readonly=1</c>. Credentials travel in the <c>X-ClickHouse-User</c>/<c>X-ClickHouse-Key</c>
/// headers, never in the URL (URLs get logged by proxies and servers).
/// </summary>
public sealed partial class ClickHouseDriver(NetworkPath network) : IDriver, IDisposable
{
    private const string SchemasQuery =
        "SELECT name FROM system.databases WHERE name NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema') ORDER BY name";

    private const int ErrorBodyLimit = 64 * 1024;
    private const int ResultBodyLimit = 16 * 1024 * 1024;

    // Every connection is resolved, checked against the egress policy and made by NetworkPath;
    // HTTPS still validates the certificate against the host name the user gave.
    private readonly ClickHouseClients _clients = new(network);

    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<ClickHouseType>()];

    public IReadOnlyCollection<string> AppliedGroups { get; } = [NetworkPathFields.Tls, NetworkPathFields.SshTunnel];

    public async Task TestAsync(TestRun run, SourceConnection connection)
    {
        if (await network.OpenAsync(run, connection) is not { Host: var host })
        {
            return;
        }

        var secure = ClickHouseClients.IsSecure(connection);
        if (secure)
        {
            // The handshake alone, on the unauthenticated /ping: a TLS failure is told apart from a login one.
            await run.StepAsync("tls", token => SendAsync(connection, host, secure, HttpMethod.Get, "/ping", null, ErrorBodyLimit, token),
                _ => TlsSettings.Encrypted(TlsSettings.Of(connection)));
        }
        else
        {
            run.Skip("tls", connection.Text("tls.mode") is null
                ? "The source uses plain HTTP (secure is false); the connection is not encrypted."
                : "tls.mode is disable: the source uses plain HTTP; the connection is not encrypted.");
        }

        // One SELECT 1 proves both: ClickHouse checks the user and password on every request.
        await run.StepAsync("authenticate", token => QueryAsync(connection, host, secure, "SELECT 1", token));
        if (run.HasFailed)
        {
            return;
        }

        run.Succeed("query", "SELECT 1 answered.");
        await run.StepAsync("schemas", token => ListAsync(connection, host, secure, token));
    }

    public async Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        var host = connection.Host ?? throw Unconfigured();
        return await ListAsync(connection, host, ClickHouseClients.IsSecure(connection), cancellationToken);
    }

    public void Dispose() => _clients.Dispose();

    /// <summary>The stable code for a ClickHouse error answer, from its <c>Code: N</c>.</summary>
    public static ConnectivityException MapError(HttpStatusCode status, string body)
    {
        var line = body.Split('\n', 2)[0].Trim();
        var match = ErrorCode().Match(line);
        var message = Tidy(line);
        if (!match.Success)
        {
            return status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
                ? new(FailureCodes.AuthFailed, $"The server refused the user name or password (HTTP {(int)status}).")
                : new(FailureCodes.DriverError, message.Length > 0
                    ? $"ClickHouse answered HTTP {(int)status}: {message}"
                    : $"ClickHouse answered HTTP {(int)status}. Check that the port is ClickHouse's HTTP interface (8123, or 8443 for HTTPS).");
        }

        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) switch
        {
            // UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTHENTICATION_FAILED
            192 or 193 or 194 or 516 => new(FailureCodes.AuthFailed, $"The server refused the user name or password ({message})."),
            // UNKNOWN_DATABASE
            81 => new(FailureCodes.DatabaseNotFound, $"The database does not exist on this server ({message})."),
            // READONLY, DATABASE_ACCESS_DENIED, ACCESS_DENIED
            164 or 291 or 497 => new(FailureCodes.InsufficientPrivilege, $"The user lacks a privilege Caravan needs ({message})."),
            var code => new(FailureCodes.DriverError, $"ClickHouse error {code}: {message}"),
        };
    }

    /// <summary>The stable code for a failure to reach the server over HTTP.</summary>
    public static ConnectivityException Map(Exception exception) => TlsRefusal(exception) ?? exception switch
    {
        ConnectivityException known => known,
        _ when Find<ConnectivityException>(exception) is { } known => known,
        HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError } or AuthenticationException
            or HttpRequestException { InnerException: AuthenticationException } => new(FailureCodes.TlsFailed,
            "The TLS handshake failed: " + Innermost(exception).Message
            + " Check the server's certificate, and that the port serves HTTPS (set secure to false for plain HTTP).", exception, step: "tls"),
        _ when Find<SocketException>(exception) is { } socket => NetworkPath.Refused(socket, 0),
        _ when Find<TimeoutException>(exception) is not null => new(FailureCodes.Timeout, "The server did not answer in time.", exception),
        HttpRequestException { HttpRequestError: HttpRequestError.ResponseEnded or HttpRequestError.InvalidResponse } => new(FailureCodes.DriverError,
            "The server did not answer as ClickHouse's HTTP interface does. Check the port (8123 for HTTP, 8443 for HTTPS; 9000 and 9440 are the native protocol) and the secure flag.",
            exception),
        JsonException => new(FailureCodes.DriverError, "ClickHouse answered with something other than the JSON Caravan asked for.", exception),
        _ => new(FailureCodes.DriverError, exception.Message, exception),
    };

    private async Task<IReadOnlyList<string>> ListAsync(SourceConnection connection, string host, bool secure, CancellationToken cancellationToken)
    {
        var rows = await QueryAsync(connection, host, secure, SchemasQuery, cancellationToken);
        var names = new List<string>(rows.GetArrayLength());
        foreach (var row in rows.EnumerateArray())
        {
            names.Add(row[0].GetString() ?? string.Empty);
        }

        return names;
    }

    /// <summary>Runs one read-only statement and returns the <c>data</c> rows of its JSONCompact answer.</summary>
    private async Task<JsonElement> QueryAsync(SourceConnection connection, string host, bool secure, string sql, CancellationToken cancellationToken)
    {
        var query = "readonly=1&default_format=JSONCompact";
        if (connection.Text("database") is { } database)
        {
            query += "&database=" + Uri.EscapeDataString(database);
        }

        var body = await SendAsync(connection, host, secure, HttpMethod.Post, "/", query, ResultBodyLimit, cancellationToken, sql);
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.GetProperty("data").Clone();
        }
        catch (Exception exception) when (exception is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ConnectivityException(FailureCodes.DriverError, "ClickHouse answered with something other than the JSON Caravan asked for.", exception);
        }
    }

    private async Task<string> SendAsync(
        SourceConnection connection, string host, bool secure, HttpMethod method, string path, string? query, int limit,
        CancellationToken cancellationToken, string? sql = null)
    {
        var uri = new UriBuilder(secure ? Uri.UriSchemeHttps : Uri.UriSchemeHttp, host.Trim('[', ']'), connection.Port, path)
        {
            Query = query ?? string.Empty,
        }.Uri;
        using var request = new HttpRequestMessage(method, uri);
        if (sql is not null)
        {
            request.Content = new StringContent(sql, Encoding.UTF8, "text/plain");
            try
            {
                request.Headers.Add("X-ClickHouse-User", connection.Text("username") ?? string.Empty);
                request.Headers.Add("X-ClickHouse-Key", connection.Secret("password") ?? string.Empty);
            }
            catch (FormatException exception)
            {
                throw new ConnectivityException(FailureCodes.AuthFailed,
                    "The user name or password contains a line break, which HTTP headers cannot carry.", exception);
            }
        }

        try
        {
            var tunnel = await network.TunnelAsync(connection, cancellationToken);
            using var response = await _clients.For(connection, tunnel).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            var text = await ReadAsync(response.Content, response.IsSuccessStatusCode ? limit : ErrorBodyLimit, cancellationToken);
            return response.IsSuccessStatusCode ? text : throw MapError(response.StatusCode, text);
        }
        catch (OperationCanceledException exception) when (!cancellationToken.IsCancellationRequested)
        {
            // The handler's own connect timeout (TCP connection and TLS handshake), not the deadline.
            throw new ConnectivityException(FailureCodes.Timeout, secure
                ? $"No HTTPS connection within {(int)network.ConnectLimit.TotalSeconds} s: the TLS handshake did not complete. Check that the port serves HTTPS, or set secure to false."
                : $"No connection within {(int)network.ConnectLimit.TotalSeconds} s.", exception);
        }
        catch (Exception exception) when (exception is HttpRequestException or IOException or SocketException or AuthenticationException)
        {
            throw cancellationToken.IsCancellationRequested
                ? new OperationCanceledException("The request was cancelled.", exception, cancellationToken)
                : Map(exception);
        }
    }

    /// <summary>Reads a body up to a limit: a server cannot make Caravan hold more than that.</summary>
    private static async Task<string> ReadAsync(HttpContent content, int limit, CancellationToken cancellationToken)
    {
        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[Math.Min(limit, 64 * 1024)];
        using var collected = new MemoryStream();
        int read;
        while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (collected.Length + read > limit)
            {
                if (limit == ErrorBodyLimit)
                {
                    collected.Write(buffer, 0, (int)(limit - collected.Length));
                    break;
                }

                throw new ConnectivityException(FailureCodes.DriverError, $"ClickHouse's answer is larger than {limit / (1024 * 1024)} MB.");
            }

            collected.Write(buffer, 0, read);
        }

        return Encoding.UTF8.GetString(collected.GetBuffer(), 0, (int)collected.Length);
    }

    /// <summary>
    /// Drops the C++ noise of old servers' messages (<c>e.displayText() = DB::Exception: ...</c>).
    /// Not shortened: the test step, the discovery failure or the query failure it ends up in is
    /// cut once its secrets are masked.
    /// </summary>
    internal static string Tidy(string line)
    {
        var text = ErrorCode().Replace(line, string.Empty, 1);
        text = text.Replace("e.displayText() = ", string.Empty, StringComparison.Ordinal)
            .Replace("DB::Exception: ", string.Empty, StringComparison.Ordinal);
        var what = text.IndexOf(", e.what() = ", StringComparison.Ordinal);
        return (what >= 0 ? text[..what] : text).Trim();
    }

    private static Exception Innermost(Exception exception)
    {
        while (exception.InnerException is not null)
        {
            exception = exception.InnerException;
        }

        return exception;
    }

    [GeneratedRegex(@"^Code:\s*(\d+)[.,]?\s*")]
    private static partial Regex ErrorCode();
}
