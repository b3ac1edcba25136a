using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using Caravan.Api.Query;

namespace Caravan.Api.Mcp;

/// <summary>
/// Collects a query result as the compact JSON of the query route
/// (<c>{"columns", "rows", "row_count", "truncated", "duration_ms"}</c>) for a tool result. The
/// gateway's row and byte limits bound what it holds.
/// </summary>
internal sealed class ResultSink : IRowSink, IDisposable
{
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly ArrayBufferWriter<byte> _buffer = new();
    private readonly Utf8JsonWriter _json;

    public ResultSink() => _json = new Utf8JsonWriter(_buffer, Options);

    public IReadOnlyList<QueryColumn> Columns { get; private set; } = [];

    public List<IReadOnlyList<object?>>? KeptRows { get; init; }

    /// <summary>The whole result is held until the tool answers, so it stays counted until the query ends.</summary>
    public bool KeepsRows => true;

    public QuerySummary? Summary { get; private set; }

    public ValueTask BeginAsync(IReadOnlyList<QueryColumn> columns, CancellationToken cancellationToken)
    {
        Columns = columns;
        _json.WriteStartObject();
        QueryValues.WriteColumns(_json, columns);
        _json.WriteStartArray("rows");
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteRowAsync(IReadOnlyList<object?> row, CancellationToken cancellationToken)
    {
        KeptRows?.Add(row);
        _json.WriteStartArray();
        foreach (var value in row)
        {
            QueryValues.WriteJson(_json, value);
        }

        _json.WriteEndArray();
        return ValueTask.CompletedTask;
    }

    public ValueTask EndAsync(QuerySummary summary, CancellationToken cancellationToken)
    {
        Summary = summary;
        _json.WriteEndArray();
        QueryValues.WriteSummary(_json, summary);
        _json.WriteEndObject();
        _json.Flush();
        return ValueTask.CompletedTask;
    }

    /// <summary>The finished result (after <see cref="EndAsync"/>).</summary>
    public ReadOnlyMemory<byte> Json => _buffer.WrittenMemory;

    public void Dispose() => _json.Dispose();
}
