using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Microsoft.Extensions.Options;
using Caravan.Api.Query;

namespace Caravan.Api.Connectors.Snowflake;

/// <summary>
/// SNOWFLAKE through the session API (<see cref="SnowflakeSession"/>), for password and key-pair
/// sources alike: on the source's shared session (<see cref="SnowflakeSessions"/>, logged in once
/// per configuration version, out when that is retired), send the statement with
/// <c>describeOnly</c> so Snowflake reports its <c>statementTypeId</c> without running it, run it
/// only when that is a read (SELECT, SHOW, DESCRIBE), read the inline rowset as it arrives and then the
/// result chunks one at a time as rows are written (each row only while the result has room for it), and abort the statement when the time limit passes. The keyword check of
/// <see cref="WarehouseStatements"/> (run by the gateway) comes first, so an obvious write costs no round trip; the
/// role's grants remain the real boundary.
/// </summary>
public sealed class SnowflakeQueryEngine(NetworkPath network, IOptions<ConnectivityOptions> options, QueryPools pools) : IQueryEngine, IDisposable
{
    private const string Service = SnowflakeSession.Service;
    private readonly HttpClient _http = RestQuery.Client(network);

    /// <summary>Snowflake: <c>--</c> and <c>//</c> comments, <c>$$…$$</c> strings (read both ways).</summary>
    public static SqlDialect Dialect { get; } = new(Backticks: true, SlashComments: true, DoubleDollarStrings: true);

    public IReadOnlyCollection<SourceType> Types { get; } = [SnowflakeDriver.Type];

    public StatementCheck Statements { get; } = WarehouseStatements.Check(Dialect, Service);

    public string? UidUnsupported =>
        "Snowflake has no per-statement setting a row access policy could read safely, so uid cannot be handed to it.";

    public void Dispose() => _http.Dispose();

    /// <summary>
    /// The query-request body: the statement, whether only to describe it, and Snowflake's own
    /// statement timeout (whole seconds of <c>timeout_ms</c>) and one-statement limit.
    /// </summary>
    public static JsonObject Body(QueryRun run, bool describeOnly) => new()
    {
        ["sqlText"] = run.Statement,
        ["asyncExec"] = false,
        ["sequenceId"] = describeOnly ? 1 : 2,
        ["describeOnly"] = describeOnly,
        ["parameters"] = new JsonObject
        {
            ["STATEMENT_TIMEOUT_IN_SECONDS"] = RestService.Seconds(run.Request.Timeout),
            ["MULTI_STATEMENT_COUNT"] = 1,
        },
    };

    /// <summary>
    /// Null when a statement of this <c>statementTypeId</c> may run, else what kind of statement it
    /// is. Snowflake's connectors number the kinds by range: 0x1000 SELECT, 0x3000 DML (0x3100
    /// INSERT … 0x3700 unload), 0x4000 session and system commands (0x4400 SHOW, 0x4500 DESCRIBE),
    /// 0x5000 transaction control, 0x6000 DDL, 0xA000 several statements.
    /// </summary>
    public static string? Refusal(long statementTypeId) => statementTypeId switch
    {
        >= 0x1000 and < 0x2000 or >= 0x4400 and < 0x4600 => null,
        0x3100 => "INSERT",
        0x3200 => "UPDATE",
        0x3300 => "DELETE",
        0x3400 => "MERGE",
        0x3500 => "a multi-table INSERT",
        0x3600 => "COPY INTO a table",
        0x3700 => "COPY INTO a location (unload)",
        >= 0x3000 and < 0x4000 => "a data change (DML)",
        0x4100 => "ALTER SESSION",
        >= 0x4300 and < 0x4400 => "USE",
        >= 0x4000 and < 0x5000 => "a session or system command",
        >= 0x5000 and < 0x6000 => "transaction control",
        >= 0x6000 and < 0x7000 => "DDL",
        0xA000 => "several statements",
        _ => "a statement of an unknown kind",
    };

    public async Task RunAsync(QueryRun run)
    {
        var service = SnowflakeSession.ServiceUri(options.Value, run.Connection);
        using var lease = pools.Acquire(run.SourceId, run.OrganizationId, $"{run.Version}|{service}",
            () => new SnowflakeSessions(_http, service, run.Connection));
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(run.Token);
        deadline.CancelAfter(run.Request.Timeout);
        SnowflakeSession? session = null;
        string? requestId = null;
        try
        {
            session = await lease.Pool.SessionAsync(null, deadline.Token);
            var described = await session.QueryAsync(Guid.NewGuid().ToString("D"), Body(run, describeOnly: true), deadline.Token);
            if (SnowflakeSessions.Expired(described))
            {
                // A shared session outlived its token: log in again, once.
                session = await lease.Pool.SessionAsync(session, deadline.Token);
                described = await session.QueryAsync(Guid.NewGuid().ToString("D"), Body(run, describeOnly: true), deadline.Token);
            }

            if (!SnowflakeSession.Succeeded(described))
            {
                throw Map(described, run, session);
            }

            if (!long.TryParse(described.Field("data", "statementTypeId"), NumberStyles.None, CultureInfo.InvariantCulture, out var type))
            {
                throw new ConnectivityException(FailureCodes.DriverError, "Snowflake described the statement without its statementTypeId; Caravan did not run it.");
            }

            if (Refusal(type) is { } kind)
            {
                throw run.Refused(string.Create(CultureInfo.InvariantCulture,
                    $"Queries are read-only. Snowflake describes this statement as {kind} (statementTypeId 0x{type:X4}); only SELECT, SHOW and DESCRIBE statements are run."));
            }

            requestId = Guid.NewGuid().ToString("D");
            var rows = new ResultRows(run);
            var reading = rows.At("data", "rowset");
            var answer = await session.QueryAsync(requestId, Body(run, describeOnly: false), reading, deadline.Token);
            if (reading.Stopped)
            {
                // The result was cut while its first rows were read.
                return;
            }

            if (!SnowflakeSession.Succeeded(answer))
            {
                throw Map(answer, run, session);
            }

            await ReadAsync(answer, rows, run, session, plainHttp: service.Scheme == Uri.UriSchemeHttp, deadline.Token);
        }
        catch (OperationCanceledException exception) when (deadline.IsCancellationRequested)
        {
            if (requestId is not null && session is not null)
            {
                await RestQuery.CancelAsync(token => session.AbortAsync(requestId, run.Statement, token));
            }

            if (run.Token.IsCancellationRequested)
            {
                throw;
            }

            throw run.TimedOut(exception);
        }
        catch (Exception exception) when (exception is HttpRequestException or IOException && !run.Token.IsCancellationRequested)
        {
            var failure = RestService.MapNetwork(exception, Service);
            throw session is not null ? session.Redacted(failure) : failure;
        }
    }

    /// <summary>
    /// The answer for a failed query-request: 422 for the statement's own failure, 504 for
    /// Snowflake's statement timeout, and the connectivity failure (502) for the session's (codes
    /// 390xxx: expired or refused session) or an HTTP error.
    /// </summary>
    public static Exception Map(RestAnswer answer, QueryRun run, SnowflakeSession session)
    {
        var code = answer.Field("code");
        if (!answer.IsSuccess || code is null || code.StartsWith("390", StringComparison.Ordinal))
        {
            return session.Fail(answer);
        }

        var text = $"Snowflake error {code}: {RestQuery.Said(answer.Field("message") ?? answer.Text, [.. session.Secrets])}";
        return code switch
        {
            "000630" or "000604" => run.TimedOut(),
            "000008" => new QueryException(new QueryFailure(QueryFailureKind.Invalid, QueryCodes.MultipleStatements,
                "Send one statement per query; Snowflake found more than one.", "sql")),
            "001003" or "001007" or "001008" => run.Failed(QueryCodes.SyntaxError, text),
            "002003" or "000904" or "002043" or "002140" => run.Failed(QueryCodes.UndefinedObject, text),
            "003001" or "003011" or "003540" => run.Failed(QueryCodes.InsufficientPrivilege, text),
            _ => run.Failed(QueryCodes.QueryFailed, text),
        };
    }

    /// <summary>One JSON result cell (always text) of a column as Snowflake describes it in <c>rowtype</c>.</summary>
    public static object? Convert(JsonNode? cell, JsonNode? column)
    {
        if (cell is not JsonValue value || !value.TryGetValue<string>(out var text))
        {
            return null;
        }

        var type = column?["type"]?.GetValue<string>()?.ToUpperInvariant() ?? "TEXT";
        var invariant = CultureInfo.InvariantCulture;
        switch (type)
        {
            case "FIXED" when long.TryParse(text, NumberStyles.AllowLeadingSign, invariant, out var whole):
                return whole;
            case "FIXED" when decimal.TryParse(text, NumberStyles.Number, invariant, out var exact):
                return exact;
            case "REAL" or "FLOAT" or "DOUBLE" when double.TryParse(text, NumberStyles.Float, invariant, out var real):
                return real;
            case "BOOLEAN":
                return text is "true" or "1" or "TRUE";
            case "DATE" when long.TryParse(text, NumberStyles.AllowLeadingSign, invariant, out var days):
                return DateOnly.FromDayNumber(DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber + (int)days).ToString("yyyy-MM-dd", invariant);
            case "TIME" when Ticks(text) is { } ticks:
                return new TimeOnly(ticks % TimeSpan.TicksPerDay).ToString("HH:mm:ss.FFFFFFF", invariant);
            case "TIMESTAMP_NTZ" when Ticks(text) is { } ticks:
                return DateTime.UnixEpoch.AddTicks(ticks).ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF", invariant);
            case "TIMESTAMP_LTZ" or "TIMESTAMP_TZ" when Ticks(text.Split(' ')[0]) is { } ticks:
                return DateTime.UnixEpoch.AddTicks(ticks).ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", invariant);
            case "VARIANT" or "OBJECT" or "ARRAY":
                return new RawJson(text);
            case "BINARY":
                try
                {
                    return System.Convert.ToBase64String(System.Convert.FromHexString(text));
                }
                catch (FormatException)
                {
                    return text;
                }

            default:
                return text;
        }
    }

    /// <summary>The type name of a <c>rowtype</c> entry as Snowflake writes it in SQL.</summary>
    public static string TypeName(JsonNode? column)
    {
        var type = column?["type"]?.GetValue<string>()?.ToUpperInvariant() ?? "TEXT";
        return type switch
        {
            "FIXED" => string.Create(CultureInfo.InvariantCulture,
                $"NUMBER({column?["precision"]?.GetValue<int>() ?? 38},{column?["scale"]?.GetValue<int>() ?? 0})"),
            "REAL" => "FLOAT",
            "TEXT" => "VARCHAR",
            _ => type,
        };
    }

    private static long? Ticks(string seconds) =>
        decimal.TryParse(seconds, NumberStyles.Number, CultureInfo.InvariantCulture, out var value)
            ? (long)decimal.Round(value * TimeSpan.TicksPerSecond)
            : null;

    /// <summary>
    /// The inline <c>rowset</c>, then each of <c>chunks</c> (fetched from its URL with
    /// <c>chunkHeaders</c>, or the SSE-C headers for <c>qrmk</c>) only while rows are still wanted.
    /// Chunk URLs must be https, unless the service itself is plain http (an endpoint override).
    /// </summary>
    private async Task ReadAsync(RestAnswer answer, ResultRows rows, QueryRun run, SnowflakeSession session, bool plainHttp, CancellationToken cancellationToken)
    {
        var data = answer.Json?["data"];
        if (data?["queryResultFormat"] is JsonValue format && format.TryGetValue<string>(out var name) && !name.Equals("json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ConnectivityException(FailureCodes.DriverError,
                $"Snowflake sent the result as {RestService.OneLine(name)}; Caravan reads JSON results only.");
        }

        // The inline rows (rowset) were read as they arrived.
        var rowType = await rows.BeginAsync(answer.Json);
        var chunks = data?["chunks"] as JsonArray ?? [];
        var headers = ChunkHeaders(data);
        for (var i = 0; i < chunks.Count; i++)
        {
            if (run.RowCount >= run.Request.MaxRows)
            {
                // More rows exist (this chunk), and none is wanted: no need to fetch one to prove it.
                run.MarkTruncated(QueryLimits.MaxRows);
                return;
            }

            if (chunks[i]?["url"] is not JsonValue url || !url.TryGetValue<string>(out var link)
                || !Uri.TryCreate(link, UriKind.Absolute, out var address)
                || !(address.Scheme == Uri.UriSchemeHttps || plainHttp && address.Scheme == Uri.UriSchemeHttp))
            {
                throw new ConnectivityException(FailureCodes.DriverError, $"Snowflake listed result chunk {i + 1} without a usable URL.");
            }

            if (!await ReadChunkAsync(address, headers, i + 1, rowType, run, session, cancellationToken))
            {
                return;
            }
        }
    }

    /// <summary>One chunk, parsed row by row as it arrives; false once no more rows are wanted.</summary>
    private async Task<bool> ReadChunkAsync(
        Uri address, IReadOnlyList<KeyValuePair<string, string>> headers, int number, JsonArray rowType, QueryRun run, SnowflakeSession session,
        CancellationToken cancellationToken)
    {
        // The chunk URL is presigned for the cloud store: the session token must not go with it.
        using var request = new HttpRequestMessage(HttpMethod.Get, address);
        foreach (var (header, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(header, value);
        }

        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new ConnectivityException(FailureCodes.DriverError,
                $"Fetching result chunk {number} from Snowflake's result store failed with HTTP {(int)response.StatusCode}.");
        }

        // A JSON chunk is its rows separated by commas, without the enclosing brackets; each row is
        // read as it arrives, and only while the result has room for it.
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        await using var chunk = new BracketedStream(body);
        var rows = new AnswerRows([], _ => true, (row, _) => run.AddAsync(Values(row, rowType)), run.HoldAsync);
        try
        {
            var (read, _) = await rows.ReadAsync(chunk, Service, cancellationToken);
            if (read is null)
            {
                throw new JsonException();
            }
        }
        catch (JsonException)
        {
            throw session.Redacted(new ConnectivityException(FailureCodes.DriverError,
                $"Result chunk {number} from Snowflake's result store is not the JSON rows Caravan expects."));
        }

        return !rows.Stopped;
    }

    /// <summary>The headers a chunk is fetched with: <c>chunkHeaders</c> as given, else SSE-C with <c>qrmk</c> as the key.</summary>
    private static List<KeyValuePair<string, string>> ChunkHeaders(JsonNode? data)
    {
        var headers = new List<KeyValuePair<string, string>>();
        if (data?["chunkHeaders"] is JsonObject given)
        {
            foreach (var (name, value) in given)
            {
                if (value is JsonValue text && text.TryGetValue<string>(out var header))
                {
                    headers.Add(new(name, header));
                }
            }
        }
        else if (data?["qrmk"] is JsonValue key && key.TryGetValue<string>(out var qrmk))
        {
            headers.Add(new("x-amz-server-side-encryption-customer-algorithm", "AES256"));
            headers.Add(new("x-amz-server-side-encryption-customer-key", qrmk));
        }

        return headers;
    }

    private static object?[] Values(JsonNode? row, JsonArray rowType)
    {
        var cells = row as JsonArray ?? [];
        var values = new object?[rowType.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = i < cells.Count ? Convert(cells[i], rowType[i]) : null;
        }

        return values;
    }

    /// <summary>One statement's rows as they arrive, in its answer and then its chunks: the columns come from the answer's <c>rowtype</c>.</summary>
    private sealed class ResultRows(QueryRun run)
    {
        private JsonArray? _rowType;

        /// <summary>A reader for the rows at <paramref name="path"/> of one answer.</summary>
        public AnswerRows At(params string[] path) => new(path, answer => _rowType is not null || answer["data"]?["rowtype"] is JsonArray, async (row, answer) =>
            await run.AddAsync(Values(row, await BeginAsync(answer))), run.HoldAsync);

        /// <summary>The columns, from the <c>rowtype</c> of <paramref name="answer"/> the first time (written out as the result's columns).</summary>
        public async Task<JsonArray> BeginAsync(JsonNode? answer)
        {
            if (_rowType is null)
            {
                _rowType = answer?["data"]?["rowtype"] as JsonArray ?? [];
                await run.BeginAsync([.. _rowType.Select(c => new QueryColumn(c?["name"]?.GetValue<string>() ?? string.Empty, TypeName(c)))]);
            }

            return _rowType;
        }
    }

    /// <summary>A stream that reads as its inner stream between '[' and ']'.</summary>
    private sealed class BracketedStream(Stream inner) : Stream
    {
        private int _state; // 0: '[' next, 1: inner, 2: ']' next, 3: done

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.Length == 0)
            {
                return 0;
            }

            switch (_state)
            {
                case 0:
                    _state = 1;
                    buffer.Span[0] = (byte)'[';
                    return 1;
                case 1:
                    var read = await inner.ReadAsync(buffer, cancellationToken);
                    if (read > 0)
                    {
                        return read;
                    }

                    _state = 2;
                    goto case 2;
                case 2:
                    _state = 3;
                    buffer.Span[0] = (byte)']';
                    return 1;
                default:
                    return 0;
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

