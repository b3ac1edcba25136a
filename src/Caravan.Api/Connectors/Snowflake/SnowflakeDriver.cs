using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors.Snowflake;

/// <summary>
/// SNOWFLAKE over HTTPS. With a private key (generated or the user's own): the SQL API
/// (<c>POST /api/v2/statements</c>) with a key-pair JWT signed here. With a password only: the
/// session API (<see cref="SnowflakeSession"/>), the one Snowflake's own drivers use for password
/// logins; the session is closed afterwards.
/// </summary>
public sealed partial class SnowflakeDriver(NetworkPath network, IOptions<ConnectivityOptions> options) : IDriver
{
    /// <summary>The type this driver and its query engine serve.</summary>
    public static SnowflakeType Type { get; } = SourceTypes.Get<SnowflakeType>();
    private const string Service = "Snowflake";

    public IReadOnlyCollection<SourceType> Types { get; } = [Type];

    public async Task TestAsync(TestRun run, SourceConnection connection)
    {
        if (await RestService.ResolveAsync(run, () => SnowflakeSession.ServiceUri(options.Value, connection)) is not { } service
            || !await RestService.OpenAsync(run, network, service))
        {
            return;
        }

        using var client = RestService.Client(network);
        var session = new Session(client, service, connection, () => RestService.Seconds(run.Remaining));
        try
        {
            var pending = await run.StepAsync("authenticate", session.AuthenticateAsync);
            if (run.HasFailed)
            {
                return;
            }

            await run.StepAsync("query", async token =>
            {
                if (pending is { Failure: { } failure })
                {
                    throw failure;
                }

                if (!session.UsesKeyPair)
                {
                    await session.RunAsync("SELECT 1", token);
                }
            });
            await run.StepAsync("schemas", token => session.SchemasAsync(token));
        }
        finally
        {
            await session.CloseAsync(run.Token);
        }
    }

    public async Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        var service = SnowflakeSession.ServiceUri(options.Value, connection);
        using var client = RestService.Client(network);
        var session = new Session(client, service, connection, () => Math.Clamp(options.Value.TestTimeoutSeconds, 1, 60));
        try
        {
            var pending = await session.AuthenticateAsync(cancellationToken);
            if (pending.Failure is { } failure)
            {
                throw failure;
            }

            return await session.SchemasAsync(cancellationToken);
        }
        finally
        {
            await session.CloseAsync(cancellationToken);
        }
    }

    /// <summary>
    /// The account part of JWT claims, as Snowflake documents it: upper case, and for an account
    /// locator with a region or cloud suffix (<c>xy12345.us-east-1</c>) only the part before the first '.'.
    /// </summary>
    public static string AccountForJwt(string account)
    {
        var dot = account.IndexOf('.', StringComparison.Ordinal);
        return (dot < 0 ? account : account[..dot]).ToUpperInvariant();
    }

    /// <summary>The stored private key (PEM, encrypted with the stored passphrase or not); the caller disposes it.</summary>
    public static RSA LoadPrivateKey(SourceConnection connection)
    {
        var pem = connection.Secret("private_key")!;
        var rsa = RSA.Create();
        try
        {
            if (pem.Contains("ENCRYPTED", StringComparison.Ordinal))
            {
                rsa.ImportFromEncryptedPem(pem, connection.Secret("private_key_passphrase")
                    ?? throw new ConnectivityException(FailureCodes.AuthFailed, "The private key is encrypted and no private_key_passphrase is stored."));
            }
            else
            {
                rsa.ImportFromPem(pem);
            }

            return rsa;
        }
        catch (Exception exception) when (exception is ArgumentException or CryptographicException)
        {
            rsa.Dispose();
            throw new ConnectivityException(FailureCodes.AuthFailed,
                "The stored private key could not be read (is private_key_passphrase right?); send it again with update-config.");
        }
        catch
        {
            rsa.Dispose();
            throw;
        }
    }

    /// <summary>The key-pair JWT of a source with a private key, valid from now.</summary>
    public static string KeyPairJwt(SourceConnection connection)
    {
        using var key = LoadPrivateKey(connection);
        return KeyPairJwt(connection.Text("account") ?? string.Empty, connection.Text("user") ?? string.Empty, key, DateTimeOffset.UtcNow);
    }

    /// <summary>
    /// A key-pair JWT (RS256): <c>iss</c> = ACCOUNT.USER.SHA256:&lt;fingerprint of the public key&gt;,
    /// <c>sub</c> = ACCOUNT.USER, valid for 59 minutes from <paramref name="now"/>.
    /// </summary>
    public static string KeyPairJwt(string account, string user, RSA key, DateTimeOffset now)
    {
        var qualified = $"{AccountForJwt(account)}.{user.ToUpperInvariant()}";
        var fingerprint = "SHA256:" + Convert.ToBase64String(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));
        var header = new JsonObject { ["alg"] = "RS256", ["typ"] = "JWT" };
        var claims = new JsonObject
        {
            ["iss"] = $"{qualified}.{fingerprint}",
            ["sub"] = qualified,
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = now.AddMinutes(59).ToUnixTimeSeconds(),
        };
        var signed = RestService.Base64Url(Encoding.UTF8.GetBytes(header.ToJsonString())) + "."
            + RestService.Base64Url(Encoding.UTF8.GetBytes(claims.ToJsonString()));
        var signature = key.SignData(Encoding.ASCII.GetBytes(signed), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signed + "." + RestService.Base64Url(signature);
    }

    /// <summary>The stable code for a Snowflake error answer, with Snowflake's own message.</summary>
    public static ConnectivityException Map(RestAnswer answer)
    {
        var code = answer.Field("code");
        var message = answer.Field("message") is { Length: > 0 } said ? RestService.OneLine(said) : null;
        var detail = message ?? (answer.Text.Length > 0 ? RestService.OneLine(answer.Text) : $"HTTP {(int)answer.Status}");
        return code switch
        {
            "390144" or "390100" => AuthFailed(detail),
            "390201" or "002003" => new ConnectivityException(FailureCodes.DatabaseNotFound,
                $"Snowflake says an object does not exist or is not authorized ({detail}). Check database, warehouse and role."),
            "003001" => new ConnectivityException(FailureCodes.InsufficientPrivilege,
                $"The user's role lacks a privilege Caravan needs ({detail})."),
            _ when answer.Status == HttpStatusCode.Unauthorized => AuthFailed(detail),
            { Length: > 0 } => new ConnectivityException(FailureCodes.DriverError, $"Snowflake error {code}: {detail}"),
            _ => new ConnectivityException(FailureCodes.DriverError, $"Snowflake answered HTTP {(int)answer.Status}: {detail}"),
        };
    }

    private static ConnectivityException AuthFailed(string detail) => new(FailureCodes.AuthFailed,
        $"Snowflake refused the credentials ({detail}). Check account and user; for a key pair, that the public key is registered for the user (ALTER USER ... SET RSA_PUBLIC_KEY).");

    /// <summary>A Snowflake identifier as written in SQL: bare when it is a plain one, else quoted.</summary>
    private static string Identifier(string name) =>
        PlainIdentifier().IsMatch(name) ? name : "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_$]*$")]
    private static partial Regex PlainIdentifier();

    /// <summary>What authentication proved, and a failure of the statement it ran that belongs to the query step.</summary>
    private sealed record Pending(ConnectivityException? Failure);

    private sealed record Rows(IReadOnlyList<string> Columns, IReadOnlyList<JsonArray> Data)
    {
        public int Column(string name, int fallback)
        {
            for (var i = 0; i < Columns.Count; i++)
            {
                if (string.Equals(Columns[i], name, StringComparison.OrdinalIgnoreCase))
                {
                    return i;
                }
            }

            return fallback;
        }
    }

    private sealed class Session(HttpClient client, Uri service, SourceConnection connection, Func<int> timeoutSeconds)
    {
        private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);

        private readonly SnowflakeSession _session = new(client, service, connection);
        private string? _jwt;

        public bool UsesKeyPair { get; } = connection.Secret("private_key") is not null;

        /// <summary>
        /// Key pair: runs SELECT 1 with the JWT (the SQL API has no separate login); a failure of the
        /// statement itself is handed back for the query step. Password: logs in.
        /// </summary>
        public async Task<Pending> AuthenticateAsync(CancellationToken cancellationToken)
        {
            if (UsesKeyPair)
            {
                _jwt = KeyPairJwt(connection);
                var answer = await StatementAsync("SELECT 1", cancellationToken);
                if (answer.IsSuccess)
                {
                    return new Pending(null);
                }

                // Snowflake checked the JWT and then refused the statement (422: SQL error, 400: a bad
                // parameter): that failure is the query step's; any other refusal is authentication's.
                var failure = Fail(answer);
                return failure.Code is FailureCodes.DatabaseNotFound or FailureCodes.InsufficientPrivilege
                    || failure.Code != FailureCodes.AuthFailed && answer.Status is HttpStatusCode.UnprocessableEntity or HttpStatusCode.BadRequest
                    ? new Pending(failure)
                    : throw failure;
            }

            await _session.LoginAsync(cancellationToken);
            return new Pending(null);
        }

        public async Task<Rows> RunAsync(string sql, CancellationToken cancellationToken)
        {
            if (UsesKeyPair)
            {
                var answer = await StatementAsync(sql, cancellationToken);
                return answer.IsSuccess ? await SqlApiRowsAsync(answer, cancellationToken) : throw Fail(answer);
            }

            return await QueryRequestAsync(sql, cancellationToken);
        }

        /// <summary>
        /// With a database: its schemas from INFORMATION_SCHEMA. Without: <c>SHOW SCHEMAS</c>, names
        /// qualified as DATABASE.SCHEMA since a schema name alone is ambiguous across databases.
        /// </summary>
        public async Task<IReadOnlyList<string>> SchemasAsync(CancellationToken cancellationToken)
        {
            var names = new SortedSet<string>(StringComparer.Ordinal);
            if (connection.Text("database") is { } database)
            {
                var rows = await RunAsync(
                    $"SELECT SCHEMA_NAME FROM {Identifier(database)}.INFORMATION_SCHEMA.SCHEMATA WHERE SCHEMA_NAME <> 'INFORMATION_SCHEMA' ORDER BY SCHEMA_NAME",
                    cancellationToken);
                var column = rows.Column("SCHEMA_NAME", 0);
                foreach (var row in rows.Data)
                {
                    if (Cell(row, column) is { Length: > 0 } name && name != "INFORMATION_SCHEMA")
                    {
                        names.Add(name);
                    }
                }
            }
            else
            {
                var rows = await RunAsync("SHOW SCHEMAS", cancellationToken);
                var nameColumn = rows.Column("name", 1);
                var databaseColumn = rows.Column("database_name", -1);
                foreach (var row in rows.Data)
                {
                    if (Cell(row, nameColumn) is not { Length: > 0 } name || name == "INFORMATION_SCHEMA")
                    {
                        continue;
                    }

                    names.Add(databaseColumn >= 0 && Cell(row, databaseColumn) is { Length: > 0 } owner ? $"{owner}.{name}" : name);
                }
            }

            return [.. names];
        }

        /// <summary>Ends a password session (best effort, briefly); key-pair calls hold no session.</summary>
        public Task CloseAsync(CancellationToken cancellationToken) => _session.CloseAsync(cancellationToken);

        private async Task<RestAnswer> StatementAsync(string sql, CancellationToken cancellationToken)
        {
            var body = new JsonObject { ["statement"] = sql, ["timeout"] = timeoutSeconds() };
            foreach (var field in new[] { "warehouse", "database", "role" })
            {
                if (connection.Text(field) is { } value)
                {
                    body[field] = value;
                }
            }

            using var request = SqlApiRequest(HttpMethod.Post, "api/v2/statements", body);
            var answer = await RestService.SendAsync(client, request, Service, cancellationToken);

            // 202: still running; the handle says where to ask again.
            while (answer.Status == HttpStatusCode.Accepted && answer.Field("statementHandle") is { Length: > 0 } handle)
            {
                await Task.Delay(PollInterval, cancellationToken);
                using var poll = SqlApiRequest(HttpMethod.Get, "api/v2/statements/" + Uri.EscapeDataString(handle), null);
                answer = await RestService.SendAsync(client, poll, Service, cancellationToken);
            }

            return answer;
        }

        private async Task<Rows> SqlApiRowsAsync(RestAnswer answer, CancellationToken cancellationToken)
        {
            var meta = answer.Json?["resultSetMetaData"];
            var columns = meta?["rowType"] is JsonArray rowType
                ? rowType.Select(c => c?["name"]?.GetValue<string>() ?? string.Empty).ToList()
                : [];
            var data = new List<JsonArray>(Arrays(answer.Json?["data"]));
            var partitions = meta?["partitionInfo"] is JsonArray info ? info.Count : 1;
            if (partitions > 1 && answer.Field("statementHandle") is { Length: > 0 } handle)
            {
                for (var partition = 1; partition < partitions; partition++)
                {
                    using var request = SqlApiRequest(HttpMethod.Get,
                        $"api/v2/statements/{Uri.EscapeDataString(handle)}?partition={partition.ToString(CultureInfo.InvariantCulture)}", null);
                    var more = await RestService.SendAsync(client, request, Service, cancellationToken);
                    data.AddRange(more.IsSuccess ? Arrays(more.Json?["data"]) : throw Fail(more));
                }
            }

            return new Rows(columns, data);
        }

        private HttpRequestMessage SqlApiRequest(HttpMethod method, string path, JsonNode? body)
        {
            var request = RestService.Json(method, RestService.Under(service, path), body);
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + _jwt);
            request.Headers.Add("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT");
            return request;
        }

        private async Task<Rows> QueryRequestAsync(string sql, CancellationToken cancellationToken)
        {
            var answer = await _session.QueryAsync(Guid.NewGuid().ToString("D"), new JsonObject { ["sqlText"] = sql }, cancellationToken);
            if (!SnowflakeSession.Succeeded(answer))
            {
                throw Fail(answer);
            }

            var data = answer.Json?["data"];
            var columns = data?["rowtype"] is JsonArray rowType
                ? rowType.Select(c => c?["name"]?.GetValue<string>() ?? string.Empty).ToList()
                : [];
            return new Rows(columns, [.. Arrays(data?["rowset"])]);
        }

        /// <summary>The mapped failure, without the JWT or session token should Snowflake ever quote them.</summary>
        private ConnectivityException Fail(RestAnswer answer)
        {
            var failure = _session.Fail(answer);
            return new ConnectivityException(failure.Code, RestService.Redact(failure.Message, _jwt), failure.InnerException, failure.Step);
        }

        private static IEnumerable<JsonArray> Arrays(JsonNode? node) =>
            node is JsonArray rows ? rows.OfType<JsonArray>() : [];

        private static string? Cell(JsonArray row, int column) =>
            column >= 0 && column < row.Count && row[column] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
    }
}
