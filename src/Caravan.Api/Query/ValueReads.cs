using System.Buffers;
using System.Text;

namespace Caravan.Api.Query;

/// <summary>
/// Reads a long value in parts, asking the result for room (<see cref="QueryRun.HoldAsync"/>)
/// before each part is kept: a value the result cannot hold is never read whole. For drivers that
/// stream a value (SQL Server's sequential reader, a DuckDB blob) rather than tell its size first.
/// </summary>
public static class ValueReads
{
    private const int Part = 32 * 1024;

    /// <summary>
    /// The text <paramref name="read"/> gives part by part (it fills the buffer and returns how many
    /// characters it put there, 0 at the end). Fits is false when the result ran out of room: the
    /// run is then cut, and the rest is never read.
    /// </summary>
    public static async ValueTask<(bool Fits, string? Text)> TextAsync(Func<char[], ValueTask<int>> read, QueryRun run)
    {
        var buffer = ArrayPool<char>.Shared.Rent(Part);
        try
        {
            StringBuilder? text = null;
            int count;
            while ((count = await read(buffer)) > 0)
            {
                // Characters are a lower bound of the UTF-8 bytes the text takes in the answer.
                if (!await run.HoldAsync(count))
                {
                    return (false, null);
                }

                (text ??= new StringBuilder()).Append(buffer, 0, count);
            }

            return (true, text?.ToString() ?? string.Empty);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The bytes of <paramref name="stream"/> as base64 (how an answer carries binary): when the
    /// stream knows its length, room for all of it is asked before any is copied; otherwise part by
    /// part. Fits is false when the result ran out of room (the run is then cut).
    /// </summary>
    public static async ValueTask<(bool Fits, string? Base64)> Base64Async(Stream stream, QueryRun run)
    {
        if (stream.CanSeek && !await run.HoldAsync(Base64Length(stream.Length - stream.Position)))
        {
            return (false, null);
        }

        using var bytes = new MemoryStream();
        var buffer = ArrayPool<byte>.Shared.Rent(Part);
        try
        {
            int count;
            while ((count = await stream.ReadAsync(buffer.AsMemory(0, Part), run.Token)) > 0)
            {
                if (!stream.CanSeek && !await run.HoldAsync(count))
                {
                    return (false, null);
                }

                bytes.Write(buffer, 0, count);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return (true, Convert.ToBase64String(bytes.GetBuffer(), 0, (int)bytes.Length));
    }

    /// <summary>The characters of <paramref name="length"/> bytes in base64, which is what they take in an answer.</summary>
    public static long Base64Length(long length) => (length + 2) / 3 * 4;
}
