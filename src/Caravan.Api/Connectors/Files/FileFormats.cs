using System.Globalization;
using System.Text;

namespace Caravan.Api.Connectors.Files;

/// <summary>The kinds of file a FILE source accepts.</summary>
public enum FileFormat
{
    Csv,
    Tsv,
    Parquet,
    Json,
    Xlsx,
    Xls,
    Sqlite,
}

/// <summary>
/// What a file is, from its first bytes and its name, and the table name it gets. Binary formats
/// are recognised by their magic bytes whatever the name says (a Parquet file named
/// <c>data.csv</c> is Parquet); text is CSV, TSV or JSON by name, else by its first line.
/// </summary>
public static class FileFormats
{
    /// <summary>How many leading bytes <see cref="Detect"/> looks at.</summary>
    public const int HeadBytes = 8192;

    /// <summary>Table names stay within PostgreSQL's identifier length, which every client copes with.</summary>
    public const int MaxTableName = 63;

    private static ReadOnlySpan<byte> ParquetMagic => "PAR1"u8;

    private static ReadOnlySpan<byte> SqliteMagic => "SQLite format 3\0"u8;

    private static ReadOnlySpan<byte> ZipMagic => [0x50, 0x4B, 0x03, 0x04];

    private static ReadOnlySpan<byte> Ole2Magic => [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

    private static ReadOnlySpan<byte> Utf8Bom => [0xEF, 0xBB, 0xBF];

    /// <summary>The file's format, or null when it is none Caravan reads (an image, an empty or binary file, a ZIP that is not a workbook).</summary>
    public static FileFormat? Detect(string fileName, ReadOnlySpan<byte> head)
    {
        var extension = Path.GetExtension(Path.GetFileName(fileName)).ToLowerInvariant();
        if (head.StartsWith(ParquetMagic))
        {
            return FileFormat.Parquet;
        }

        if (head.StartsWith(SqliteMagic))
        {
            return FileFormat.Sqlite;
        }

        if (head.StartsWith(ZipMagic))
        {
            // A workbook's parts live under xl/; the first part is often [Content_Types].xml, so
            // the name is trusted when xl/ is not within the head.
            return extension is ".xlsx" || head.IndexOf("xl/"u8) >= 0 ? FileFormat.Xlsx : null;
        }

        if (head.StartsWith(Ole2Magic))
        {
            return FileFormat.Xls;
        }

        var text = head.StartsWith(Utf8Bom) ? head[Utf8Bom.Length..] : head;
        if (!IsText(text))
        {
            return null;
        }

        switch (extension)
        {
            case ".json" or ".jsonl" or ".ndjson":
                return FileFormat.Json;
            case ".csv":
                return FileFormat.Csv;
            case ".tsv" or ".tab":
                return FileFormat.Tsv;
        }

        var first = text.TrimStart(" \t\r\n\f"u8);
        if (first[0] is (byte)'{' or (byte)'[')
        {
            return FileFormat.Json;
        }

        var line = FirstLine(text);
        var tabs = line.Count((byte)'\t');
        var others = Math.Max(line.Count((byte)','), line.Count((byte)';'));
        if (tabs > others)
        {
            return FileFormat.Tsv;
        }

        // A .txt of one column is still a table; any other name needs a delimiter to count as one.
        return others > 0 || extension is ".txt" ? FileFormat.Csv : null;
    }

    /// <summary>The delimiter of a CSV file: ';' when its first line has more semicolons than commas (the European habit), else ','.</summary>
    internal static char CsvDelimiter(ReadOnlySpan<byte> head)
    {
        var line = FirstLine(head);
        return line.Count((byte)';') > line.Count((byte)',') ? ';' : ',';
    }

    /// <summary>
    /// The table name for a file: its name without the extension, lower case, each run of
    /// characters outside <c>[a-z0-9_]</c> made one '_' (accented letters lose their accents
    /// first), trimmed of '_', "t_" in front of a leading digit, "file" when nothing is left, at
    /// most 63 characters.
    /// </summary>
    public static string TableStem(string fileName)
    {
        var name = Path.GetFileNameWithoutExtension(Path.GetFileName(fileName.Replace('\\', '/')));
        return Finish(Sanitize(name));
    }

    /// <summary>The table name for one part of a file (a sheet, a SQLite table): "{stem}_{part}" under the same rule.</summary>
    public static string TableName(string stem, string part) => Finish(Sanitize(stem + "_" + part));

    /// <summary>Shortens a table name to leave room for <paramref name="suffix"/> (such as "_2") within the limit.</summary>
    internal static string WithSuffix(string table, string suffix) =>
        table[..Math.Min(table.Length, MaxTableName - suffix.Length)].TrimEnd('_') + suffix;

    private static string Sanitize(string text)
    {
        var builder = new StringBuilder(text.Length);
        var inRun = false;
        foreach (var c in text.Normalize(NormalizationForm.FormD).ToLowerInvariant())
        {
            if (CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.NonSpacingMark)
            {
                continue;
            }

            if (c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_')
            {
                builder.Append(c);
                inRun = false;
            }
            else if (!inRun)
            {
                builder.Append('_');
                inRun = true;
            }
        }

        return builder.ToString();
    }

    private static string Finish(string sanitized)
    {
        var name = sanitized.Trim('_');
        if (name.Length == 0)
        {
            return "file";
        }

        if (char.IsAsciiDigit(name[0]))
        {
            name = "t_" + name;
        }

        return name.Length <= MaxTableName ? name : name[..MaxTableName].TrimEnd('_');
    }

    private static ReadOnlySpan<byte> FirstLine(ReadOnlySpan<byte> text)
    {
        var end = text.IndexOfAny((byte)'\n', (byte)'\r');
        return end < 0 ? text : text[..end];
    }

    /// <summary>
    /// Text has no control bytes but tab, line ends and form feed, and something besides blanks.
    /// Binary files (images, archives, random bytes) have control bytes within their first kilobytes.
    /// </summary>
    private static bool IsText(ReadOnlySpan<byte> head)
    {
        var blank = true;
        foreach (var b in head)
        {
            if (b < 0x20 && b is not ((byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\f'))
            {
                return false;
            }

            blank &= b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\f';
        }

        return !blank;
    }
}
