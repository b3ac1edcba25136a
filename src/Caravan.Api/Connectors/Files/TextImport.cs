using System.Text.Json;
using DuckDB.NET.Data;
using static Caravan.Api.Connectors.Files.ConversionTarget;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// CSV, TSV and JSON through named pipes, in two passes. DuckDB opens a file a second time after
/// detecting its layout (read_csv and read_json with auto-detection, even DESCRIBE of read_json),
/// and a pipe cannot be read twice: the second open waits for a writer for ever. So the first
/// pass detects on its own pipe with functions that open the file once (<c>sniff_csv</c>;
/// <c>read_json_objects</c> with <c>json_group_structure</c> over the first rows, as many as
/// read_json samples), and the second reads a fresh pipe with everything given and detection off.
/// </summary>
internal static class TextImport
{
    /// <summary>How many rows the layout is guessed from, DuckDB's own default sample.</summary>
    private const int SampleRows = 20480;

    public static void Csv(string fileName, string stem, char delimiter, Func<Stream> openRaw, ConversionTarget target, string scratch)
    {
        var kind = delimiter == '\t' ? "TSV" : "CSV";
        var dialect = new List<string>();
        var columns = new List<string>();
        using (var pipe = FilePipe.Create(scratch, openRaw))
        {
            Guarded(fileName, kind, () =>
            {
                using var command = target.Connection.CreateCommand();
                command.CommandText = $"""
                    SELECT Quote, Escape, Comment, DateFormat, TimestampFormat, unnest(Columns, recursive := true)
                    FROM sniff_csv({Literal(pipe.Path)}, header = true, skip = 0, delim = {Literal(delimiter.ToString())}, compression = 'none', sample_size = {SampleRows})
                    """;
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    if (dialect.Count == 0)
                    {
                        dialect.Add($"quote = {Literal(Sniffed(reader.GetString(0)))}");
                        dialect.Add($"escape = {Literal(Sniffed(reader.GetString(1)))}");
                        if (Sniffed(reader.GetString(2)) is { Length: 1 } comment)
                        {
                            dialect.Add($"comment = {Literal(comment)}");
                        }

                        AddFormat(dialect, "dateformat", reader, 3);
                        AddFormat(dialect, "timestampformat", reader, 4);
                    }

                    columns.Add($"{Literal(reader.GetString(5))}: {Literal(reader.GetString(6))}");
                }
            });
        }

        if (columns.Count == 0)
        {
            throw new FileConversionException($"{fileName}: not a valid {kind} file: it has no header row.");
        }

        Load(fileName, kind, stem, openRaw, target, scratch, path =>
            $"read_csv({Literal(path)}, auto_detect = false, header = true, skip = 0, delim = {Literal(delimiter.ToString())}, {string.Join(", ", dialect)}, " +
            $"columns = {{{string.Join(", ", columns)}}}, compression = 'none')");
    }

    public static void Json(string fileName, string stem, ReadOnlySpan<byte> head, Func<Stream> openRaw, ConversionTarget target, string scratch)
    {
        var text = head.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? head[3..] : head;
        var format = text.TrimStart(" \t\r\n\f"u8) is [(byte)'[', ..] ? "array" : "newline_delimited";
        string? structure = null;
        using (var pipe = FilePipe.Create(scratch, openRaw))
        {
            Guarded(fileName, "JSON", () =>
            {
                using var command = target.Connection.CreateCommand();
                command.CommandText = $"""
                    SELECT json_group_structure(json)::VARCHAR
                    FROM (SELECT json FROM read_json_objects({Literal(pipe.Path)}, format = '{format}', compression = 'uncompressed') LIMIT {SampleRows})
                    """;
                structure = command.ExecuteScalar() as string;
            });
        }

        var columns = Columns(structure)
            ?? throw new FileConversionException($"{fileName}: not a valid JSON file: it must hold objects, as an array or one per line (NDJSON).");
        // records = true: left to guess, read_json opens the file again to tell one-key objects
        // from plain values, and on a pipe that second open waits for ever.
        Load(fileName, "JSON", stem, openRaw, target, scratch, path =>
            $"read_json({Literal(path)}, format = '{format}', records = true, columns = {{{string.Join(", ", columns)}}}, compression = 'uncompressed')");
    }

    /// <summary>The second pass: a fresh pipe, read to its end, the copy checked for errors of its own.</summary>
    private static void Load(string fileName, string kind, string stem, Func<Stream> openRaw, ConversionTarget target, string scratch, Func<string, string> reader)
    {
        using var pipe = FilePipe.Create(scratch, openRaw);
        var table = target.Claim(stem);
        FileConverter.Run(target, fileName, kind, $"CREATE TABLE {Qualified(table)} AS SELECT * FROM {reader(pipe.Path)}");
        pipe.Complete();
    }

    private static void Guarded(string fileName, string kind, Action action)
    {
        try
        {
            action();
        }
        catch (DuckDBException exception) when (!exception.Message.Contains("INTERRUPT", StringComparison.OrdinalIgnoreCase))
        {
            throw new FileConversionException(FileConverter.Describe(fileName, kind, exception.Message), exception);
        }
    }

    /// <summary>sniff_csv shows a character it did not find as "(empty)".</summary>
    private static string Sniffed(string character) => character == "(empty)" ? "" : character;

    private static void AddFormat(List<string> dialect, string option, DuckDBDataReader reader, int ordinal)
    {
        if (!reader.IsDBNull(ordinal) && reader.GetString(ordinal) is { Length: > 0 } format)
        {
            dialect.Add($"{option} = {Literal(format)}");
        }
    }

    /// <summary>
    /// read_json's columns (<c>'name': 'TYPE'</c>) from the structure of the sampled objects, or
    /// null when they are not objects. Nested objects become STRUCTs, arrays lists, integers
    /// BIGINT (HUGEINT when the sample holds negative and non-negative ones, as read_json's own
    /// detection does); a key that was only ever
    /// null, or whose values disagree, is kept as JSON.
    /// </summary>
    private static List<string>? Columns(string? structure)
    {
        if (structure is null)
        {
            return null;
        }

        using var document = JsonDocument.Parse(structure);
        if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.EnumerateObject().Any())
        {
            return null;
        }

        return [.. document.RootElement.EnumerateObject().Select(p => $"{Literal(p.Name)}: {Literal(TypeOf(p.Value))}")];
    }

    private static string TypeOf(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object when element.EnumerateObject().Any() =>
            "STRUCT(" + string.Join(", ", element.EnumerateObject().Select(p => $"{Quote(p.Name)} {TypeOf(p.Value)}")) + ")",
        JsonValueKind.Array when element.GetArrayLength() == 1 => TypeOf(element[0]) + "[]",
        // The structure calls every non-negative integer UBIGINT; read_json's own detection makes
        // them BIGINT, which a negative value further down the file, or a subtraction, needs.
        JsonValueKind.String when element.GetString() is "UBIGINT" => "BIGINT",
        JsonValueKind.String when element.GetString() is { } name && name != "NULL" && IsTypeName(name) => name,
        _ => "JSON",
    };

    private static bool IsTypeName(string name) => name.Length > 0 && name.All(c => char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c) || c is '_' or '(' or ')' or ',' or ' ');
}
