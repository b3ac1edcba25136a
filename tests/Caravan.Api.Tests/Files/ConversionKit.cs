using System.IO.Compression;
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

    /// <summary>
    /// A minimal .xlsx: a ZIP of the OPC parts Excel itself needs, sheets given as rows of cells
    /// (string, double, bool, DateTime or null). Strings go in as inline strings, except the
    /// first sheet's header, which uses the shared string table, so both paths are read. Dates
    /// are serial numbers with a date style (numFmtId 14), as Excel stores them.
    /// </summary>
    public static void WriteXlsx(string path, params (string Name, object?[][] Rows)[] sheets)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Part(string name, string xml)
        {
            using var writer = new StreamWriter(zip.CreateEntry(name).Open(), new UTF8Encoding(false));
            writer.Write(xml);
        }

        const string Main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
        const string Rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
        Part("[Content_Types].xml", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
            <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
            <Default Extension="xml" ContentType="application/xml"/>
            <Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
            <Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>
            <Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>
            {string.Concat(sheets.Select((_, i) => $"<Override PartName=\"/xl/worksheets/sheet{i + 1}.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"))}
            </Types>
            """);
        Part("_rels/.rels", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
            <Relationship Id="rId1" Type="{Rel}/officeDocument" Target="xl/workbook.xml"/>
            </Relationships>
            """);
        Part("xl/workbook.xml", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <workbook xmlns="{Main}" xmlns:r="{Rel}"><sheets>
            {string.Concat(sheets.Select((s, i) => $"<sheet name=\"{Escape(s.Name)}\" sheetId=\"{i + 1}\" r:id=\"rId{i + 1}\"/>"))}
            </sheets></workbook>
            """);
        Part("xl/_rels/workbook.xml.rels", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
            {string.Concat(sheets.Select((_, i) => $"<Relationship Id=\"rId{i + 1}\" Type=\"{Rel}/worksheet\" Target=\"worksheets/sheet{i + 1}.xml\"/>"))}
            <Relationship Id="rId{sheets.Length + 1}" Type="{Rel}/styles" Target="styles.xml"/>
            <Relationship Id="rId{sheets.Length + 2}" Type="{Rel}/sharedStrings" Target="sharedStrings.xml"/>
            </Relationships>
            """);
        Part("xl/styles.xml", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <styleSheet xmlns="{Main}">
            <fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>
            <fills count="1"><fill><patternFill patternType="none"/></fill></fills>
            <borders count="1"><border/></borders>
            <cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
            <cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>
            </styleSheet>
            """);
        var shared = sheets[0].Rows[0].OfType<string>().ToList();
        Part("xl/sharedStrings.xml", $"""
            <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
            <sst xmlns="{Main}" count="{shared.Count}" uniqueCount="{shared.Count}">{string.Concat(shared.Select(s => $"<si><t>{Escape(s)}</t></si>"))}</sst>
            """);
        for (var s = 0; s < sheets.Length; s++)
        {
            var rows = new StringBuilder();
            for (var r = 0; r < sheets[s].Rows.Length; r++)
            {
                rows.Append(System.Globalization.CultureInfo.InvariantCulture, $"<row r=\"{r + 1}\">");
                for (var c = 0; c < sheets[s].Rows[r].Length; c++)
                {
                    var cell = $"{(char)('A' + c)}{r + 1}";
                    rows.Append(sheets[s].Rows[r][c] switch
                    {
                        null => "",
                        string text when s == 0 && r == 0 => $"<c r=\"{cell}\" t=\"s\"><v>{shared.IndexOf(text)}</v></c>",
                        string text => $"<c r=\"{cell}\" t=\"inlineStr\"><is><t>{Escape(text)}</t></is></c>",
                        bool flag => $"<c r=\"{cell}\" t=\"b\"><v>{(flag ? 1 : 0)}</v></c>",
                        DateTime date => $"<c r=\"{cell}\" s=\"1\"><v>{date.ToOADate().ToString(System.Globalization.CultureInfo.InvariantCulture)}</v></c>",
                        double number => $"<c r=\"{cell}\"><v>{number.ToString(System.Globalization.CultureInfo.InvariantCulture)}</v></c>",
                        var other => throw new ArgumentException("No cell for " + other.GetType()),
                    });
                }

                rows.Append("</row>");
            }

            Part($"xl/worksheets/sheet{s + 1}.xml", $"""
                <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
                <worksheet xmlns="{Main}"><sheetData>{rows}</sheetData></worksheet>
                """);
        }
    }

    private static string Escape(string text) => System.Security.SecurityElement.Escape(text);
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
