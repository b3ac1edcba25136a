namespace Caravan.Api.Connectors.Files;

/// <summary>
/// Reads a JSON file (an array of values, or values one after another as in NDJSON) and hands
/// it out as NDJSON, one value per line, in segments of about <see cref="SegmentBytes"/>, each
/// converted by a statement of its own (TextImport). Only the structure is scanned here
/// (strings, escapes, nesting, the array's commas); DuckDB parses the values. Line breaks
/// between tokens become spaces, so a pretty-printed array is one value per line too.
/// </summary>
internal sealed class JsonSegments(Stream raw, string fileName)
{
    public const int SegmentBytes = 2 << 20;

    /// <summary>The largest value: a segment holds at least one whole value, so this bounds its memory.</summary>
    public const int MaxValueBytes = 8 << 20;

    private readonly byte[] input = new byte[1 << 16];
    private int position;
    private int length;
    private bool started;
    private bool array;
    private bool ended;
    private byte[] segment = new byte[1 << 16];

    /// <summary>The segment <see cref="Next"/> filled; valid until the next call.</summary>
    public ReadOnlyMemory<byte> Segment { get; private set; }

    /// <summary>How many values the segments before the current one held.</summary>
    public long ValuesBefore { get; private set; }

    private long values;

    /// <summary>How many values the segments so far held, the current one included.</summary>
    public long Values => values;

    /// <summary>Fills the next segment with at most <paramref name="maxValues"/> values; false at the end of the file.</summary>
    public bool Next(int maxValues = int.MaxValue)
    {
        ValuesBefore = values;
        var written = 0;
        var count = 0;
        if (!started)
        {
            Start();
        }

        while (count < maxValues && written < SegmentBytes && NextValue())
        {
            written = CopyValue(written);
            count++;
            values++;
        }

        Segment = segment.AsMemory(0, written);
        return count > 0;
    }

    private void Start()
    {
        started = true;
        if (Peek() == 0xEF)
        {
            // A UTF-8 byte order mark.
            foreach (var expected in (ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])
            {
                if (Read() != expected)
                {
                    throw Invalid("it is not UTF-8 text");
                }
            }
        }

        SkipWhitespace();
        if (Peek() == '[')
        {
            Read();
            array = true;
        }
    }

    /// <summary>Moves to the start of the next value (past the array's comma), or to the end.</summary>
    private bool NextValue()
    {
        if (ended)
        {
            return false;
        }

        SkipWhitespace();
        if (!array)
        {
            ended = Peek() < 0;
            return !ended;
        }

        if (values > 0)
        {
            switch (Read())
            {
                case ',':
                    SkipWhitespace();
                    break;
                case ']':
                    return End();
                case < 0:
                    throw Invalid("the array is not closed");
                default:
                    throw Invalid($"a comma is missing after value {values}");
            }
        }
        else if (Peek() == ']')
        {
            Read();
            return End();
        }

        if (Peek() < 0)
        {
            throw Invalid("the array is not closed");
        }

        return true;
    }

    private bool End()
    {
        ended = true;
        SkipWhitespace();
        if (Peek() >= 0)
        {
            throw Invalid("something follows the array");
        }

        return false;
    }

    /// <summary>Copies one value into the segment at <paramref name="at"/> as one line; where the segment ends now.</summary>
    private int CopyValue(int at)
    {
        var start = at;
        var depth = 0;
        var inString = false;
        var escaped = false;
        while (true)
        {
            var next = Peek();
            if (next < 0)
            {
                if (depth > 0 || inString)
                {
                    throw Invalid($"it ends inside value {values + 1}");
                }

                break;
            }

            var b = (byte)next;
            if (!inString && depth == 0 && at > start && (b is (byte)',' or (byte)']' or (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
            {
                break; // the end of a number, true, false or null
            }

            Read();
            if (inString)
            {
                if (escaped)
                {
                    escaped = false;
                }
                else if (b == '\\')
                {
                    escaped = true;
                }
                else if (b == '"')
                {
                    inString = false;
                }
            }
            else if (b == '"')
            {
                inString = true;
            }
            else if (b is (byte)'{' or (byte)'[')
            {
                depth++;
            }
            else if (b is (byte)'}' or (byte)']')
            {
                depth--;
            }
            else if (b is (byte)'\r' or (byte)'\n')
            {
                b = (byte)' ';
            }

            at = Put(at, start, b);
            if (!inString && depth <= 0 && (b is (byte)'}' or (byte)']' || (b == '"' && !escaped && at - start > 1)))
            {
                break;
            }
        }

        return Put(at, start, (byte)'\n');
    }

    private int Put(int at, int start, byte b)
    {
        if (at - start >= MaxValueBytes)
        {
            throw new FileConversionException(
                $"{fileName}: not a valid JSON file: value {values + 1} is larger than {MaxValueBytes >> 20} MB.");
        }

        if (at == segment.Length)
        {
            Array.Resize(ref segment, Math.Min(segment.Length * 2, SegmentBytes + MaxValueBytes + 1));
        }

        segment[at] = b;
        return at + 1;
    }

    private void SkipWhitespace()
    {
        while (Peek() is ' ' or '\t' or '\r' or '\n')
        {
            Read();
        }
    }

    private int Peek()
    {
        if (position == length)
        {
            length = raw.Read(input, 0, input.Length);
            position = 0;
            if (length == 0)
            {
                return -1;
            }
        }

        return input[position];
    }

    private int Read()
    {
        var b = Peek();
        if (b >= 0)
        {
            position++;
        }

        return b;
    }

    private FileConversionException Invalid(string problem) => new($"{fileName}: not a valid JSON file: {problem}.");
}
