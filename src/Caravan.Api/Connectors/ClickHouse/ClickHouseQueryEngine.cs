using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Caravan.Api.Connectivity;
using Caravan.Api.Query;

namespace Caravan.Api.Connectors.ClickHouse;

/// <summary>
/// CLICKHOUSE over its HTTP interface with <c>readonly=1</c> (set last, after the limits it may
/// not change): <c>max_execution_time</c>, <c>max_result_rows</c>/<c>max_result_bytes</c> with
/// <c>result_overflow_mode=break</c>, and <c>uid</c> as the custom setting <c>SQL_caravan_uid</c>.
/// Rows stream as <c>TabSeparatedWithNamesAndTypes</c>, read line by line as bytes: a line longer than
/// a buffer grows only while the result has room for it.
/// </summary>
public sealed partial class ClickHouseQueryEngine(NetworkPath network) : IQueryEngine, IDisposable
{
    public const string UidSetting = "SQL_caravan_uid";
    private const int ErrorBodyLimit = 64 * 1024;

    private readonly ClickHouseClients _clients = new(network);

    /// <summary>ClickHouse: backticks; no <c>$</c> in names.</summary>
    public static SqlDialect Dialect { get; } = new(Backticks: true, DollarInNames: false);

    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<ClickHouseType>()];

    public IReadOnlyCollection<string> AppliedGroups { get; } = [NetworkPathFields.Tls, NetworkPathFields.SshTunnel];

    /// <summary>
    /// What <c>readonly=1</c> lets through and a query must not do: <c>KILL QUERY</c> (by the first
    /// word, as every other statement but a read), a <c>SETTINGS</c> clause or any mention of
    /// <see cref="UidSetting"/> (readonly=1 refuses a changed setting too; this says why, before
    /// sending), <c>INTO OUTFILE</c>, and the table functions that reach other servers, files or
    /// programs (readonly=1 forbids every table function on older servers; newer ones allow some).
    /// </summary>
    public static StatementCheck Check { get; } = new()
    {
        Dialect = Dialect,
        Database = "ClickHouse",
        Leading = ["SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN"],
        Words = new()
        {
            { StatementCheck.WritesResult, "INTO" },
            { "sets settings for the statement, which Caravan sets itself (the limits, readonly and the uid)", "SETTINGS" },
        },
        Names = new() { { "the setting that carries uid, which a statement may not set", UidSetting } },
        Functions = new()
        {
            {
                StatementCheck.ConnectsElsewhere, "url", "urlCluster", "remote", "remoteSecure", "cluster", "clusterAllReplicas", "mysql",
                "postgresql", "mongodb", "redis", "jdbc", "odbc", "hdfs*", "s3*", "gcs*", "oss*", "cosn*", "azureBlobStorage*", "hive",
                "iceberg*", "deltaLake*", "hudi*", "sqlite"
            },
            { StatementCheck.ServerFiles, "file", "fileCluster", "executable", "input" },
        },
    };

    public StatementCheck Statements => Check;

    public string? UidUnsupported => null;

    public void Dispose() => _clients.Dispose();

    /// <summary>The query string of one statement: limits first, readonly=1 last (settings after it would be refused).</summary>
    public static string Settings(QueryRun run)
    {
        var parts = new List<string>
        {
            "default_format=TabSeparatedWithNamesAndTypes",
            "max_execution_time=" + Math.Max(1, (int)Math.Ceiling(run.Request.TimeoutMs / 1000.0)).ToString(CultureInfo.InvariantCulture),
            "max_result_rows=" + (run.Request.MaxRows + 1L).ToString(CultureInfo.InvariantCulture),
            "max_result_bytes=" + run.Options.MaxResultBytes.ToString(CultureInfo.InvariantCulture),
            "result_overflow_mode=break",
        };
        if (run.Connection.Text("database") is { } database)
        {
            parts.Add("database=" + Uri.EscapeDataString(database));
        }

        if (run.Request.Uid is { } uid)
        {
            parts.Add(UidSetting + "=" + Uri.EscapeDataString(uid));
        }

        parts.Add("readonly=1");
        return string.Join('&', parts);
    }

    /// <summary>
    /// system.columns lists a table's columns in their order; its "position" column is newer than
    /// some servers still in use (18.16 has none), so the statement does not sort by it.
    /// </summary>
    public string DescribeTable(string schema, string table) => $"""
        SELECT name, type, startsWith(type, 'Nullable(') AS nullable
        FROM system.columns
        WHERE database = unhex('{SqlLiterals.Hex(schema)}') AND table = unhex('{SqlLiterals.Hex(table)}')
        """;

    public async Task RunAsync(QueryRun run)
    {
        var host = run.Connection.Text("host") ?? throw DriverFailures.Unconfigured();
        var secure = ClickHouseClients.IsSecure(run.Connection);
        var uri = new UriBuilder(secure ? Uri.UriSchemeHttps : Uri.UriSchemeHttp, host.Trim('[', ']'), run.Connection.Port, "/")
        {
            Query = Settings(run),
        }.Uri;
        using var request = new HttpRequestMessage(HttpMethod.Post, uri)
        {
            Content = new StringContent(run.Statement, Encoding.UTF8, "text/plain"),
        };
        try
        {
            request.Headers.Add("X-ClickHouse-User", run.Connection.Text("username") ?? string.Empty);
            request.Headers.Add("X-ClickHouse-Key", run.Connection.Secret("password") ?? string.Empty);
        }
        catch (FormatException exception)
        {
            throw new ConnectivityException(FailureCodes.AuthFailed, "The user name or password contains a line break, which HTTP headers cannot carry.", exception);
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(run.Token);
        limit.CancelAfter(run.Request.Timeout + TimeSpan.FromSeconds(1));
        try
        {
            var tunnel = await network.TunnelAsync(run.Connection, limit.Token);
            using var response = await _clients.For(run.Connection, tunnel).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, limit.Token);
            if (!response.IsSuccessStatusCode)
            {
                throw Map(response.StatusCode, await ReadErrorAsync(response.Content, limit.Token), run);
            }

            await using var stream = await response.Content.ReadAsStreamAsync(limit.Token);
            await ReadRowsAsync(new TsvLines(stream), run, limit.Token);
        }
        catch (OperationCanceledException exception) when (limit.IsCancellationRequested && !run.Token.IsCancellationRequested)
        {
            throw run.TimedOut(exception);
        }
        catch (Exception exception) when (exception is HttpRequestException or IOException && !run.Token.IsCancellationRequested)
        {
            throw ClickHouseDriver.Map(exception);
        }
    }

    /// <summary>The answer for a ClickHouse error text (<c>Code: N, ...</c>).</summary>
    public static Exception Map(HttpStatusCode status, string body, QueryRun run)
    {
        var line = body.Split('\n', 2)[0].Trim();
        var match = ErrorCode().Match(line);
        if (!match.Success)
        {
            return ClickHouseDriver.MapError(status, body);
        }

        var code = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        var message = ClickHouseDriver.Tidy(line);
        var said = $"ClickHouse error {code}: {message}";
        return code switch
        {
            164 => run.Refused($"Queries are read-only; the database refused this statement ({message})."),
            115 when message.Contains(UidSetting, StringComparison.Ordinal) => new QueryException(new QueryFailure(QueryFailureKind.Invalid,
                QueryCodes.Unsupported,
                $"This ClickHouse server does not accept the custom setting {UidSetting} (ClickHouse 20.5 or newer with custom_settings_prefixes including SQL_), so uid cannot be handed to it.",
                "uid")),
            62 when message.Contains("Multi-statements", StringComparison.OrdinalIgnoreCase) => new QueryException(new QueryFailure(
                QueryFailureKind.Invalid, QueryCodes.MultipleStatements, "Send one statement per query; this text holds more than one.", "sql")),
            62 => run.Failed(QueryCodes.SyntaxError, said),
            159 or 394 => run.TimedOut(),
            60 or 47 or 81 or 46 or 16 => run.Failed(QueryCodes.UndefinedObject, said),
            497 or 291 => run.Failed(QueryCodes.InsufficientPrivilege, said),
            192 or 193 or 194 or 516 => ClickHouseDriver.MapError(status, body),
            _ => run.Failed(QueryCodes.QueryFailed, said),
        };
    }

    /// <summary>The value of one TSV field of a column of the given ClickHouse type.</summary>
    public static object? Convert(string field, string type)
    {
        if (field == "\\N")
        {
            return null;
        }

        var text = Unescape(field);
        var bare = Unwrap(type);
        var invariant = CultureInfo.InvariantCulture;
        if (bare.StartsWith("UInt64", StringComparison.Ordinal) && ulong.TryParse(text, NumberStyles.None, invariant, out var big))
        {
            return big;
        }

        if ((bare.StartsWith("Int", StringComparison.Ordinal) || bare.StartsWith("UInt", StringComparison.Ordinal))
            && !bare.Contains("128", StringComparison.Ordinal) && !bare.Contains("256", StringComparison.Ordinal)
            && long.TryParse(text, NumberStyles.AllowLeadingSign, invariant, out var whole))
        {
            return whole;
        }

        if (bare.StartsWith("Float", StringComparison.Ordinal) && double.TryParse(text, NumberStyles.Float, invariant, out var real) && double.IsFinite(real))
        {
            return real;
        }

        if (bare.StartsWith("Decimal", StringComparison.Ordinal) && decimal.TryParse(text, NumberStyles.Number, invariant, out var exact))
        {
            return exact;
        }

        return bare == "Bool" ? text == "true" : text;
    }

    private static string Unwrap(string type)
    {
        foreach (var wrapper in new[] { "Nullable(", "LowCardinality(" })
        {
            while (type.StartsWith(wrapper, StringComparison.Ordinal) && type.EndsWith(')'))
            {
                type = type[wrapper.Length..^1];
            }
        }

        return type;
    }

    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var text = new StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] != '\\' || i + 1 == field.Length)
            {
                text.Append(field[i]);
                continue;
            }

            i++;
            text.Append(field[i] switch
            {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                'b' => '\b',
                'f' => '\f',
                '0' => '\0',
                var other => other,
            });
        }

        return text.ToString();
    }

    private static async Task ReadRowsAsync(TsvLines reader, QueryRun run, CancellationToken cancellationToken)
    {
        var (_, names) = await reader.ReadLineAsync(run, cancellationToken);
        var (_, types) = await reader.ReadLineAsync(run, cancellationToken);
        if (names is null || types is null)
        {
            // A statement without a result (none reach here read-only, but be exact).
            await run.BeginAsync([]);
            return;
        }

        if (ErrorCode().IsMatch(names[0]))
        {
            throw Map(HttpStatusCode.OK, string.Join('\t', names), run);
        }

        var columns = names.Select((n, i) => new QueryColumn(Unescape(n), i < types.Length ? types[i] : "String")).ToArray();
        await run.BeginAsync(columns);
        while (true)
        {
            var (fits, fields) = await reader.ReadLineAsync(run, cancellationToken);
            if (!fits || fields is null)
            {
                return;
            }

            if (fields.Length != columns.Length || ErrorCode().IsMatch(fields[0]) && columns.Length == 1 && fields[0].Contains("DB::Exception", StringComparison.Ordinal))
            {
                // ClickHouse reports a failure that happens mid-result as text after the rows it sent.
                var line = string.Join('\t', fields);
                var rest = line + "\n" + await reader.ReadRestAsync(ErrorBodyLimit, cancellationToken);
                throw ErrorCode().IsMatch(line)
                    ? Map(HttpStatusCode.OK, rest, run)
                    : run.Failed(QueryCodes.QueryFailed, "ClickHouse sent a row Caravan could not read.");
            }

            var row = new object?[columns.Length];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = Convert(fields[i], columns[i].Type);
            }

            if (!await run.AddAsync(row))
            {
                return;
            }
        }
    }

    private static async Task<string> ReadErrorAsync(HttpContent content, CancellationToken cancellationToken)
    {
        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[ErrorBodyLimit];
        var total = 0;
        int read;
        while (total < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(total), cancellationToken)) > 0)
        {
            total += read;
        }

        return Encoding.UTF8.GetString(buffer, 0, total);
    }

    /// <summary>
    /// The lines of a TabSeparated body, read as bytes and split into their (still escaped) fields.
    /// A line that fits in the buffer (64 KiB) is taken from it whole; a longer one is gathered a
    /// buffer at a time, each only once the result has room for it (<see cref="QueryRun.HoldAsync"/>),
    /// so a huge value is never read whole: at most what the result has left.
    /// </summary>
    private sealed class TsvLines(Stream body)
    {
        private const int Size = 64 * 1024;
        private byte[] _buffer = new byte[Size];
        private int _start;
        private int _end;
        private bool _done;

        /// <summary>The fields of the next line, null after the last; Fits is false when the result had no room for the line (the run is then cut).</summary>
        public async ValueTask<(bool Fits, string[]? Fields)> ReadLineAsync(QueryRun run, CancellationToken cancellationToken)
        {
            List<byte[]>? parts = null;
            while (true)
            {
                var newLine = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
                if (newLine >= 0 || _done && (_start < _end || parts is not null))
                {
                    var length = newLine >= 0 ? newLine : _end - _start;
                    var fields = Fields(parts, _buffer.AsSpan(_start, length));
                    _start += newLine >= 0 ? newLine + 1 : length;
                    return (true, fields);
                }

                if (_done)
                {
                    return (true, null);
                }

                if (_end == Size && _start > 0)
                {
                    _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
                    _end -= _start;
                    _start = 0;
                }
                else if (_end == Size)
                {
                    // A whole buffer without a line end: part of a long line, kept only while the result has room for it.
                    if (!await run.HoldAsync(Size))
                    {
                        return (false, null);
                    }

                    (parts ??= []).Add(_buffer);
                    _buffer = new byte[Size];
                    _start = _end = 0;
                }

                var read = await body.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
                _done = read == 0;
                _end += read;
            }
        }

        /// <summary>What is left of the body, up to <paramref name="limit"/> bytes (a failure ClickHouse told after the rows).</summary>
        public async Task<string> ReadRestAsync(int limit, CancellationToken cancellationToken)
        {
            using var rest = new MemoryStream();
            rest.Write(_buffer, _start, Math.Min(_end - _start, limit));
            var buffer = new byte[Size];
            int read;
            while (rest.Length < limit && (read = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(Size, limit - rest.Length)), cancellationToken)) > 0)
            {
                rest.Write(buffer, 0, read);
            }

            return Encoding.UTF8.GetString(rest.GetBuffer(), 0, (int)rest.Length);
        }

        private static string[] Fields(List<byte[]>? parts, ReadOnlySpan<byte> end)
        {
            if (parts is null)
            {
                return Split(end);
            }

            var line = new byte[(parts.Count * Size) + end.Length];
            for (var i = 0; i < parts.Count; i++)
            {
                parts[i].CopyTo(line, i * Size);
            }

            end.CopyTo(line.AsSpan(parts.Count * Size));
            return Split(line);
        }

        private static string[] Split(ReadOnlySpan<byte> line)
        {
            var fields = new List<string>();
            int tab;
            while ((tab = line.IndexOf((byte)'\t')) >= 0)
            {
                fields.Add(Encoding.UTF8.GetString(line[..tab]));
                line = line[(tab + 1)..];
            }

            fields.Add(Encoding.UTF8.GetString(line));
            return [.. fields];
        }
    }

    [GeneratedRegex(@"^Code:\s*(\d+)[.,]?\s*")]
    private static partial Regex ErrorCode();
}
