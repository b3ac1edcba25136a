using System.Security.Cryptography;
using System.Text;
using Caravan.Api.Connectors.Files;
using DuckDB.NET.Data;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// One conversion's surroundings, as the lead's job gives them: a private work folder (0700), a
/// database path that does not exist yet, a fresh key; the folder is removed when the test ends.
/// </summary>
internal sealed class ConversionKit : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("caravan-convert-").FullName;

    public ConversionKit()
    {
        WorkDirectory = Path.Combine(root, "work");
        Caravan.Api.Hosting.OwnerOnlyFiles.CreateFolder(WorkDirectory);
        Directory.CreateDirectory(Path.Combine(root, "inputs"));
    }

    public string WorkDirectory { get; }

    public string Key { get; } = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public string Database(string name = "converted") => Path.Combine(root, name + ".duckdb");

    /// <summary>A path for an input file the test writes (plaintext input, as an upload is before Caravan encrypts it).</summary>
    public string Input(string name) => Path.Combine(root, "inputs", name);

    public Task<IReadOnlyList<ConvertedTable>> ConvertFileAsync(
        string path, FileFormat format, string? databasePath = null, CancellationToken cancellationToken = default) =>
        ConvertAsync(format, Path.GetFileName(path), () => File.OpenRead(path), databasePath, cancellationToken);

    public Task<IReadOnlyList<ConvertedTable>> ConvertAsync(
        FileFormat format, string fileName, Func<Stream> openRaw, string? databasePath = null, CancellationToken cancellationToken = default) =>
        FileConverter.ConvertAsync(format, fileName, FileFormats.TableStem(fileName), openRaw,
            databasePath ?? Database(), Key, WorkDirectory, cancellationToken);

    public DuckDBConnection Open(string? databasePath = null) => FileConverter.OpenReadOnly(databasePath ?? Database(), Key);

    public object? Scalar(string sql, string? databasePath = null)
    {
        using var connection = Open(databasePath);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    public List<string> Columns(string table, string? databasePath = null)
    {
        using var connection = Open(databasePath);
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = '{table}' ORDER BY ordinal_position";
        using var reader = command.ExecuteReader();
        var columns = new List<string>();
        while (reader.Read())
        {
            columns.Add(reader.GetString(0));
        }

        return columns;
    }

    /// <summary>Nothing the conversion made is left in the work folder.</summary>
    public void AssertWorkDirectoryEmpty() => Assert.Empty(Directory.EnumerateFileSystemEntries(WorkDirectory));

    /// <summary>The database file does not hold <paramref name="text"/> in plaintext (UTF-8 or UTF-16).</summary>
    public void AssertNotInFile(string text, string? databasePath = null)
    {
        var bytes = File.ReadAllBytes(databasePath ?? Database());
        Assert.True(bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(text)) < 0, $"'{text}' is in the database file in plaintext");
        Assert.True(bytes.AsSpan().IndexOf(Encoding.Unicode.GetBytes(text)) < 0, $"'{text}' is in the database file in UTF-16");
    }

    public void Dispose() => Directory.Delete(root, recursive: true);
}

/// <summary>
/// A CSV made up as it is read, so a large file needs no disk or memory in the test either; it
/// records the largest read the converter asked for and how many bytes it took.
/// </summary>
internal sealed class GeneratedCsv(long rows, TimeSpan? delayPerChunk = null) : ReadOnlyStream
{
    private readonly byte[] header = "id,name,amount\n"u8.ToArray();
    private byte[] pending = [];
    private int pendingOffset;
    private long next = -1;

    public int LargestRead { get; private set; }

    public long BytesRead { get; private set; }

    /// <summary>The sum of the amount column: row i has amount i % 1000.</summary>
    public static long AmountSum(long rows) => Enumerable.Range(0, 1000).Sum(i => (long)i * (rows / 1000 + (i < rows % 1000 ? 1 : 0)));

    public override int Read(byte[] buffer, int offset, int count)
    {
        LargestRead = Math.Max(LargestRead, count);
        if (pendingOffset == pending.Length)
        {
            if (next >= rows)
            {
                return 0;
            }

            if (delayPerChunk is { } delay)
            {
                Thread.Sleep(delay);
            }

            if (next < 0)
            {
                pending = header;
                next = 0;
            }
            else
            {
                pending = Chunk();
            }

            pendingOffset = 0;
        }

        var n = Math.Min(count, pending.Length - pendingOffset);
        pending.AsSpan(pendingOffset, n).CopyTo(buffer.AsSpan(offset));
        pendingOffset += n;
        BytesRead += n;
        return n;
    }

    private byte[] Chunk()
    {
        var builder = new StringBuilder();
        for (var i = 0; i < 2000 && next < rows; i++)
        {
            builder.Append(System.Globalization.CultureInfo.InvariantCulture, $"{next},\"name, number {next}\",{next % 1000}\n");
            next++;
        }

        return Encoding.UTF8.GetBytes(builder.ToString());
    }
}

/// <summary>A forward-only stream for tests that make up their content as it is read.</summary>
internal abstract class ReadOnlyStream : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
