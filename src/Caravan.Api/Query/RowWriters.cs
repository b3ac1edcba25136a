using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Caravan.Api.Query;

/// <summary>The answer formats of the query route.</summary>
public enum QueryFormat
{
    Json,
    Csv,
    Ndjson,
}

/// <summary>
/// Writes a result to an HTTP response as its rows arrive, never holding more than a small buffer:
/// nothing is sent until the first row (or the end), so a failure before it still gets its own
/// status code; a failure after it is told in the body (JSON, NDJSON) or by aborting the
/// response (CSV), see docs/query.md.
/// </summary>
public sealed class HttpRowSink(HttpResponse response, QueryFormat format) : IRowSink
{
    private const int FlushBytes = 32 * 1024;
    private static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(200);
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };
    private static readonly byte[] NewLine = "\n"u8.ToArray();

    private readonly PipeWriter _pipe = response.BodyWriter;
    private readonly Stopwatch _sinceFlush = Stopwatch.StartNew();
    private readonly StringBuilder _line = new();
    private Utf8JsonWriter? _json;
    private IReadOnlyList<QueryColumn> _columns = [];
    private long _pending;

    /// <summary>Whether anything was sent: from then on the status is 200 and failures go in the body.</summary>
    public bool Started { get; private set; }

    /// <summary>Rows go to the client as they come; a row is held only until it is written (the pipe's buffer is small).</summary>
    public bool KeepsRows => false;

    public static string ContentType(QueryFormat format) => format switch
    {
        QueryFormat.Csv => "text/csv; charset=utf-8",
        QueryFormat.Ndjson => "application/x-ndjson; charset=utf-8",
        _ => "application/json; charset=utf-8",
    };

    public ValueTask BeginAsync(IReadOnlyList<QueryColumn> columns, CancellationToken cancellationToken)
    {
        _columns = columns;
        return ValueTask.CompletedTask;
    }

    public async ValueTask WriteRowAsync(IReadOnlyList<object?> row, CancellationToken cancellationToken)
    {
        Start();
        switch (format)
        {
            case QueryFormat.Csv:
                WriteCsvLine(row.Select(QueryValues.CsvText));
                break;
            case QueryFormat.Ndjson:
                var json = Json();
                json.WriteStartArray();
                foreach (var value in row)
                {
                    QueryValues.WriteJson(json, value);
                }

                json.WriteEndArray();
                EndLine();
                break;
            default:
                json = Json();
                json.WriteStartArray();
                foreach (var value in row)
                {
                    QueryValues.WriteJson(json, value);
                }

                json.WriteEndArray();
                break;
        }

        await MaybeFlushAsync(cancellationToken);
    }

    public ValueTask EndAsync(QuerySummary summary, CancellationToken cancellationToken)
    {
        Start();
        switch (format)
        {
            case QueryFormat.Csv:
                if (response.SupportsTrailers())
                {
                    response.AppendTrailer("X-Caravan-Row-Count", summary.RowCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    response.AppendTrailer("X-Caravan-Truncated", summary.Truncated ? "true" : "false");
                    if (summary.TruncatedBy is { } limit)
                    {
                        response.AppendTrailer("X-Caravan-Truncated-By", limit);
                    }
                }

                break;
            case QueryFormat.Ndjson:
                var json = Json();
                json.WriteStartObject();
                QueryValues.WriteSummary(json, summary);
                json.WriteEndObject();
                EndLine();
                break;
            default:
                json = Json();
                json.WriteEndArray();
                QueryValues.WriteSummary(json, summary);
                json.WriteEndObject();
                break;
        }

        // Not flushed here: the end of the response sends what is left together with the last
        // chunk, in one write (a small result then goes out in one packet instead of two).
        _json?.Flush();
        return ValueTask.CompletedTask;
    }

    /// <summary>Tells a failure after rows were sent: an <c>error</c> member (JSON), a last <c>error</c> line (NDJSON), an aborted response (CSV).</summary>
    public async Task FailAsync(QueryFailure failure)
    {
        if (format == QueryFormat.Csv)
        {
            await FlushQuietlyAsync();
            response.HttpContext.Abort();
            return;
        }

        var json = Json();
        if (format == QueryFormat.Json)
        {
            json.WriteEndArray();
        }
        else
        {
            json.WriteStartObject();
        }

        json.WritePropertyName("error");
        json.WriteStartObject();
        json.WriteNumber("status", failure.Status);
        json.WriteString("detail", failure.Message);
        json.WriteString("code", failure.Code);
        json.WriteEndObject();
        json.WriteEndObject();
        if (format == QueryFormat.Ndjson)
        {
            EndLine();
        }

        await FlushQuietlyAsync();
    }

    private void Start()
    {
        if (Started)
        {
            return;
        }

        Started = true;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ContentType(format);
        response.Headers.CacheControl = "no-store";
        switch (format)
        {
            case QueryFormat.Csv:
                WriteCsvLine(_columns.Select(c => c.Name));
                break;
            case QueryFormat.Ndjson:
                var json = Json();
                json.WriteStartObject();
                QueryValues.WriteColumns(json, _columns);
                json.WriteEndObject();
                EndLine();
                break;
            default:
                json = Json();
                json.WriteStartObject();
                QueryValues.WriteColumns(json, _columns);
                json.WritePropertyName("rows");
                json.WriteStartArray();
                break;
        }
    }

    private Utf8JsonWriter Json() => _json ??= new Utf8JsonWriter(_pipe, WriterOptions);

    /// <summary>Ends one NDJSON line; the next value starts a new top-level document.</summary>
    private void EndLine()
    {
        var json = Json();
        json.Flush();
        _pending += json.BytesCommitted;
        _pipe.Write(NewLine);
        _pending++;
        json.Reset(_pipe);
    }

    private void WriteCsvLine(IEnumerable<string?> fields)
    {
        _line.Clear();
        var first = true;
        foreach (var field in fields)
        {
            if (!first)
            {
                _line.Append(',');
            }

            first = false;
            QueryValues.AppendCsvField(_line, field);
        }

        _line.Append("\r\n");
        foreach (var chunk in _line.GetChunks())
        {
            _pending += Encoding.UTF8.GetBytes(chunk.Span, _pipe);
        }
    }

    private async ValueTask MaybeFlushAsync(CancellationToken cancellationToken)
    {
        if (_json is not null && _json.BytesPending > 0)
        {
            _pending += _json.BytesPending;
            _json.Flush();
        }

        if (_pending >= FlushBytes || _sinceFlush.Elapsed >= FlushInterval)
        {
            await FlushAsync(cancellationToken);
        }
    }

    private async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        _json?.Flush();
        _pending = 0;
        _sinceFlush.Restart();
        await _pipe.FlushAsync(cancellationToken);
    }

    private async Task FlushQuietlyAsync()
    {
        try
        {
            await FlushAsync(CancellationToken.None);
        }
        catch (Exception exception) when (exception is IOException or OperationCanceledException or InvalidOperationException)
        {
            // The client is gone; nothing more to tell it.
        }
    }
}
