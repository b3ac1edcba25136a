using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Caravan.Api.Tests.Query;

/// <summary>
/// Reads a streamed query answer of rows <c>(key bigint, pad text)</c> as its bytes arrive, one
/// buffer at a time, so a test can take in hundreds of megabytes without holding them: counts the
/// rows, checks that the keys run 1, 2, 3... and that every pad has its length, and keeps the
/// summary (JSON, NDJSON) or the header (CSV).
/// </summary>
internal abstract class StreamedRows(int padLength)
{
    public long Rows { get; private set; }

    public long FirstKey { get; private set; }

    public long LastKey { get; private set; }

    /// <summary>Rows whose key did not follow the one before, or whose pad had another length.</summary>
    public long MisshapenRows { get; private set; }

    public long Bytes { get; private set; }

    public long? RowCount { get; protected set; }

    public bool? Truncated { get; protected set; }

    /// <summary>The <c>error</c> member or line of a failure after the first row, if any.</summary>
    public string? Error { get; protected set; }

    /// <summary>The CSV header line.</summary>
    public string? Header { get; protected set; }

    public static StreamedRows For(string accept, int padLength) => accept switch
    {
        "text/csv" => new CsvRows(padLength),
        "application/x-ndjson" => new NdjsonRows(padLength),
        _ => new JsonRows(padLength),
    };

    /// <summary>Reads <paramref name="body"/> to its end, calling <paramref name="sample"/> after every <paramref name="sampleBytes"/> read.</summary>
    public async Task ReadAsync(Stream body, long sampleBytes, Action sample, CancellationToken cancellationToken)
    {
        var pipe = PipeReader.Create(body, new StreamPipeReaderOptions(bufferSize: 64 * 1024));
        long sinceSample = 0;
        while (true)
        {
            var read = await pipe.ReadAsync(cancellationToken);
            var consumed = Consume(read.Buffer, read.IsCompleted);
            var length = read.Buffer.Slice(0, consumed).Length;
            Bytes += length;
            sinceSample += length;
            pipe.AdvanceTo(consumed, read.Buffer.End);
            if (sinceSample >= sampleBytes)
            {
                sinceSample = 0;
                sample();
            }

            if (read.IsCompleted)
            {
                break;
            }
        }

        await pipe.CompleteAsync();
    }

    /// <summary>Takes in what it can of <paramref name="buffer"/>; returns where the unread rest starts.</summary>
    protected abstract SequencePosition Consume(ReadOnlySequence<byte> buffer, bool final);

    protected void Row(long key, int pad)
    {
        Rows++;
        if (Rows == 1)
        {
            FirstKey = key;
        }
        else if (key != LastKey + 1)
        {
            MisshapenRows++;
        }

        if (pad != padLength)
        {
            MisshapenRows++;
        }

        LastKey = key;
    }

    /// <summary>One JSON document: <c>{"columns", "rows", "row_count", "truncated", "duration_ms"}</c>, read with a reader that resumes across buffers.</summary>
    private sealed class JsonRows(int padLength) : StreamedRows(padLength)
    {
        private JsonReaderState _state;
        private string? _member;
        private long _rowKey = -1;
        private int _rowPad = -1;
        private int _rowField;

        protected override SequencePosition Consume(ReadOnlySequence<byte> buffer, bool final)
        {
            var json = new Utf8JsonReader(buffer, final, _state);
            while (json.Read())
            {
                // A row may end in a later buffer, so its parts are kept here rather than read in one go.
                switch (json.TokenType)
                {
                    case JsonTokenType.PropertyName when json.CurrentDepth == 1:
                        _member = json.GetString();
                        if (_member == "error")
                        {
                            Error = "error";
                        }

                        break;
                    case JsonTokenType.StartArray when json.CurrentDepth == 2 && _member == "rows":
                        (_rowKey, _rowPad, _rowField) = (-1, -1, 0);
                        break;
                    case JsonTokenType.EndArray when json.CurrentDepth == 2 && _member == "rows":
                        Row(_rowKey, _rowField == 2 ? _rowPad : -1);
                        break;
                    case not (JsonTokenType.EndArray or JsonTokenType.EndObject) when json.CurrentDepth == 3 && _member == "rows":
                        if (_rowField == 0 && json.TokenType == JsonTokenType.Number)
                        {
                            _rowKey = json.GetInt64();
                        }
                        else if (_rowField == 1 && json.TokenType == JsonTokenType.String)
                        {
                            // A value split between two segments of the buffer comes as a sequence.
                            _rowPad = (int)(json.HasValueSequence ? json.ValueSequence.Length : json.ValueSpan.Length);
                        }

                        _rowField++;
                        break;
                    case JsonTokenType.Number when json.CurrentDepth == 1 && _member == "row_count":
                        RowCount = json.GetInt64();
                        break;
                    case JsonTokenType.True or JsonTokenType.False when json.CurrentDepth == 1 && _member == "truncated":
                        Truncated = json.GetBoolean();
                        break;
                }
            }

            _state = json.CurrentState;
            return json.Position;
        }
    }

    /// <summary>Lines ended by <c>\n</c>, each handed on without the line end.</summary>
    private abstract class LineRows(int padLength) : StreamedRows(padLength)
    {
        protected override SequencePosition Consume(ReadOnlySequence<byte> buffer, bool final)
        {
            var reader = new SequenceReader<byte>(buffer);
            while (reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
            {
                Line(line.IsSingleSegment ? line.FirstSpan : line.ToArray());
            }

            if (final && !reader.End)
            {
                Line(reader.UnreadSequence.ToArray());
                reader.AdvanceToEnd();
            }

            return reader.Position;
        }

        protected abstract void Line(ReadOnlySpan<byte> line);
    }

    /// <summary><c>{"columns"}</c>, one array per row, then <c>{"row_count", "truncated", "duration_ms"}</c> or <c>{"error"}</c>.</summary>
    private sealed class NdjsonRows(int padLength) : LineRows(padLength)
    {
        protected override void Line(ReadOnlySpan<byte> line)
        {
            if (line.Length > 0 && line[0] == (byte)'[')
            {
                var json = new Utf8JsonReader(line);
                json.Read();
                Row(ref json);
                return;
            }

            var document = JsonNode.Parse(line)!.AsObject();
            if (document["error"] is { } error)
            {
                Error = error.ToJsonString();
            }
            else if (document["row_count"] is { } rowCount)
            {
                RowCount = rowCount.GetValue<long>();
                Truncated = document["truncated"]!.GetValue<bool>();
            }
        }

        /// <summary>One row array <c>[key, "pad"]</c>, the reader on its start.</summary>
        private void Row(ref Utf8JsonReader json)
        {
            long key = -1;
            var pad = -1;
            var field = 0;
            while (json.Read() && json.TokenType != JsonTokenType.EndArray)
            {
                if (field == 0 && json.TokenType == JsonTokenType.Number)
                {
                    key = json.GetInt64();
                }
                else if (field == 1 && json.TokenType == JsonTokenType.String)
                {
                    pad = json.ValueSpan.Length;
                }

                field++;
            }

            Row(key, field == 2 ? pad : -1);
        }
    }

    /// <summary>A header line, then <c>key,pad</c> lines ended by CRLF (nothing here needs quoting).</summary>
    private sealed class CsvRows(int padLength) : LineRows(padLength)
    {
        protected override void Line(ReadOnlySpan<byte> line)
        {
            line = line.TrimEnd((byte)'\r');
            if (Header is null)
            {
                Header = Encoding.UTF8.GetString(line);
                return;
            }

            var comma = line.IndexOf((byte)',');
            var key = comma > 0 && Utf8Parser.TryParse(line[..comma], out long parsed, out var digits) && digits == comma ? parsed : -1;
            Row(key, comma > 0 ? line.Length - comma - 1 : -1);
        }
    }
}
