using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors;

/// <summary>
/// Reads the rows of a JSON answer as they arrive rather than the whole answer first: each element
/// of the array at <paramref name="path"/> (an empty path: the answer is that array) goes to
/// <paramref name="row"/> on its own, and is read only while <paramref name="room"/> allows it (asked
/// for every part of a row beyond its first <see cref="Initial"/> bytes), so a huge value is never
/// read whole. Every other member is kept as the answer's JSON, bounded like a whole answer
/// (<see cref="RestService.MaxAnswerBytes"/>). Rows that come before the members
/// <paramref name="ready"/> waits for (a row's columns) are kept within the same bound and handed
/// over once the answer is read.
/// </summary>
public sealed class AnswerRows(
    IReadOnlyList<string> path, Func<JsonObject, bool> ready, Func<JsonNode?, JsonObject, ValueTask<bool>> row, Func<long, ValueTask<bool>> room)
{
    /// <summary>The bytes a row may take before it has to ask for room: a buffer's worth.</summary>
    public const int Initial = 64 * 1024;

    private readonly IReadOnlyList<string> _path = path;
    private readonly Func<JsonObject, bool> _ready = ready;
    private readonly Func<JsonNode?, JsonObject, ValueTask<bool>> _row = row;
    private readonly Func<long, ValueTask<bool>> _room = room;

    /// <summary>True once <c>row</c> or <c>room</c> said stop: the rest of the answer was not read.</summary>
    public bool Stopped { get; private set; }

    /// <summary>
    /// Reads one answer: its members other than the rows, or null and the text when it is not the
    /// JSON expected. Throws <see cref="JsonException"/> when the JSON is malformed or cut short.
    /// </summary>
    public Task<(JsonObject? Answer, string Text)> ReadAsync(Stream body, string service, CancellationToken cancellationToken) =>
        new Reader(this, body, service).ReadAsync(cancellationToken);

    private enum Step
    {
        More,
        MoreOfRow,
        Row,
        End,
    }

    /// <summary>One pass over one answer: a buffer that holds at least the element being read, and where the JSON reader stands.</summary>
    private sealed class Reader(AnswerRows rows, Stream body, string service)
    {
        private readonly List<JsonObject> _open = [];
        private readonly List<JsonNode?> _early = [];
        private readonly JsonObject _answer = [];
        private byte[] _buffer = new byte[Initial];
        private int _start;
        private int _end;
        private bool _final;
        private bool _begun;
        private bool _inRows;
        private JsonReaderState _state;
        private long _kept;
        private long _held;
        private JsonNode? _row;

        public async Task<(JsonObject? Answer, string Text)> ReadAsync(CancellationToken cancellationToken)
        {
            if (!await StartsAsJsonAsync(cancellationToken))
            {
                return (null, await RestAsync(cancellationToken));
            }

            while (true)
            {
                switch (Advance())
                {
                    case Step.Row:
                        _held = 0;
                        Shrink();
                        if (_early.Count == 0 && rows._ready(_answer))
                        {
                            rows.Stopped = !await rows._row(_row, _answer);
                        }
                        else
                        {
                            Keep(_row);
                        }

                        _row = null;
                        if (rows.Stopped)
                        {
                            return Done();
                        }

                        break;
                    case Step.End:
                        foreach (var early in _early)
                        {
                            if (!await rows._row(early, _answer))
                            {
                                rows.Stopped = true;
                                break;
                            }
                        }

                        return Done();
                    case Step.MoreOfRow when _end - _start > Initial:
                        // What is read of this row beyond a buffer's worth must fit in the result.
                        var more = _end - _start - _held;
                        if (!await rows._room(more))
                        {
                            rows.Stopped = true;
                            return Done();
                        }

                        _held += more;
                        await FillAsync(cancellationToken);
                        break;
                    default:
                        if (_end - _start > RestService.MaxAnswerBytes)
                        {
                            throw TooLarge();
                        }

                        await FillAsync(cancellationToken);
                        break;
                }
            }
        }

        private (JsonObject? Answer, string Text) Done() => (_answer, _answer.ToJsonString());

        /// <summary>Reads on from where the last step left off, up to the next row, the end, or the end of the bytes at hand.</summary>
        private Step Advance()
        {
            var reader = new Utf8JsonReader(_buffer.AsSpan(_start, _end - _start), _final, _state);
            while (true)
            {
                var mark = reader.BytesConsumed;
                var state = reader.CurrentState;
                Step More(Step step)
                {
                    _start += (int)mark;
                    _state = state;
                    if (_final)
                    {
                        throw new JsonException("The answer ended inside its JSON.");
                    }

                    return step;
                }

                if (!_begun)
                {
                    if (!reader.Read())
                    {
                        return More(Step.More);
                    }

                    _begun = true;
                    if (rows._path.Count == 0 ? reader.TokenType != JsonTokenType.StartArray : reader.TokenType != JsonTokenType.StartObject)
                    {
                        throw new JsonException("The answer is not the JSON expected.");
                    }

                    if (rows._path.Count == 0)
                    {
                        _inRows = true;
                    }
                    else
                    {
                        _open.Add(_answer);
                    }

                    continue;
                }

                if (_inRows)
                {
                    if (!reader.Read())
                    {
                        return More(Step.MoreOfRow);
                    }

                    if (reader.TokenType == JsonTokenType.EndArray)
                    {
                        _inRows = false;
                        if (_open.Count == 0)
                        {
                            Commit(ref reader);
                            return Step.End;
                        }

                        continue;
                    }

                    var begin = (int)reader.TokenStartIndex;
                    if (!reader.TrySkip())
                    {
                        return More(Step.MoreOfRow);
                    }

                    _row = JsonNode.Parse(_buffer.AsSpan(_start + begin, (int)reader.BytesConsumed - begin));
                    Commit(ref reader);
                    return Step.Row;
                }

                if (!reader.Read())
                {
                    return More(Step.More);
                }

                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    _open.RemoveAt(_open.Count - 1);
                    if (_open.Count == 0)
                    {
                        Commit(ref reader);
                        return Step.End;
                    }

                    continue;
                }

                var name = reader.GetString()!;
                var level = _open.Count - 1;
                if (!reader.Read())
                {
                    return More(Step.More);
                }

                if (level < rows._path.Count && name == rows._path[level])
                {
                    if (level == rows._path.Count - 1 && reader.TokenType == JsonTokenType.StartArray)
                    {
                        _inRows = true;
                        continue;
                    }

                    if (level < rows._path.Count - 1 && reader.TokenType == JsonTokenType.StartObject)
                    {
                        var inner = new JsonObject();
                        _open[level][name] = inner;
                        _open.Add(inner);
                        continue;
                    }
                }

                var start = (int)reader.TokenStartIndex;
                if (!reader.TrySkip())
                {
                    return More(Step.More);
                }

                var length = (int)reader.BytesConsumed - start;
                _kept += length;
                if (_kept > RestService.MaxAnswerBytes)
                {
                    throw TooLarge();
                }

                _open[level][name] = JsonNode.Parse(_buffer.AsSpan(_start + start, length));
            }
        }

        private void Commit(ref Utf8JsonReader reader)
        {
            _start += (int)reader.BytesConsumed;
            _state = reader.CurrentState;
        }

        /// <summary>A row that came before its columns: kept, within the bound of a whole answer, until the answer is read.</summary>
        private void Keep(JsonNode? early)
        {
            _kept += Encoding.UTF8.GetByteCount(early?.ToJsonString() ?? "null");
            if (_kept > RestService.MaxAnswerBytes)
            {
                throw TooLarge();
            }

            _early.Add(early);
        }

        /// <summary>Moves what is unread to the front, grows the buffer when it is full, and reads up to a buffer's worth more.</summary>
        private async Task FillAsync(CancellationToken cancellationToken)
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            if (_end == _buffer.Length)
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }

            var read = await body.ReadAsync(_buffer.AsMemory(_end, Math.Min(Initial, _buffer.Length - _end)), cancellationToken);
            if (read == 0)
            {
                _final = true;
            }

            _end += read;
        }

        /// <summary>Back to a buffer's worth once a long row is read, so the next rows do not keep its memory.</summary>
        private void Shrink()
        {
            if (_buffer.Length > Initial && _end - _start <= Initial / 2)
            {
                var smaller = new byte[Initial];
                Buffer.BlockCopy(_buffer, _start, smaller, 0, _end - _start);
                _end -= _start;
                _start = 0;
                _buffer = smaller;
            }
        }

        /// <summary>Whether the answer's first character opens the JSON expected (reading until there is one).</summary>
        private async Task<bool> StartsAsJsonAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                var text = _buffer.AsSpan(_start, _end - _start).TrimStart(" \t\r\n"u8);
                if (!text.IsEmpty)
                {
                    return text[0] == (rows._path.Count == 0 ? (byte)'[' : (byte)'{');
                }

                if (_final)
                {
                    return false;
                }

                await FillAsync(cancellationToken);
            }
        }

        /// <summary>An answer that is not the JSON expected, as text (bounded like a whole answer).</summary>
        private async Task<string> RestAsync(CancellationToken cancellationToken)
        {
            while (!_final)
            {
                if (_end - _start > RestService.MaxAnswerBytes)
                {
                    throw TooLarge();
                }

                await FillAsync(cancellationToken);
            }

            return Encoding.UTF8.GetString(_buffer, _start, _end - _start);
        }

        private ConnectivityException TooLarge() => RestService.TooLarge(service);
    }
}
