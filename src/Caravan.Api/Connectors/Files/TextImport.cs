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

    /// <summary>
    /// read_csv's read buffer. DuckDB's default (16 times the 2 MB longest line, 32 MB) takes half
    /// the conversion's memory limit per buffer in flight; 4 MB still holds the longest line twice.
    /// </summary>
    private const int ReadBufferBytes = 4 << 20;

    /// <summary>
    /// The largest JSON object (DuckDB's default is 16 MB). read_json's buffers are twice this,
    /// so DuckDB's default would not fit in the conversion's memory limit.
    /// </summary>
    internal const int MaxJsonObjectBytes = 4 << 20;

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
            $"columns = {{{string.Join(", ", columns)}}}, compression = 'none', buffer_size = {ReadBufferBytes})");
    }

    public static void Json(string fileName, string stem, Func<Stream> openRaw, ConversionTarget target)
    {
        // The layout from the first rows, as many as read_json samples.
        string? structure = null;
        using (var raw = openRaw())
        {
            var sample = new JsonSegments(raw, fileName);
            if (sample.Next(SampleRows))
            {
                structure = RunSegment(fileName, target, sample, $"SELECT json_group_structure(value)::VARCHAR FROM {Values}") as string;
            }
        }

        var columns = Columns(structure)
            ?? throw new FileConversionException($"{fileName}: not a valid JSON file: it must hold objects, as an array or one per line (NDJSON).");

        // Then every segment, each value cast to the row's type (missing keys are null, others ignored).
        using var all = openRaw();
        var segments = new JsonSegments(all, fileName);
        var table = Qualified(target.Claim(stem));
        var select = $"SELECT unnest(CAST(value AS STRUCT({string.Join(", ", columns)}))) FROM {Values}";
        var first = true;
        while (segments.Next())
        {
            RunSegment(fileName, target, segments, first ? $"CREATE TABLE {table} AS {select}" : $"INSERT INTO {table} {select}");
            first = false;
        }
    }

    /// <summary>
    /// A segment's values as rows of JSON, from the statement's parameter. Not through a pipe:
    /// DuckDB's JSON reader keeps all it read from a pipe, and on a bad value deep in a pipe it
    /// opens the file again to count lines, which waits for ever.
    /// </summary>
    private const string Values = "(SELECT line::JSON AS value FROM (SELECT unnest(string_split(decode($segment), chr(10))) AS line) WHERE line <> '')";

    private static object? RunSegment(string fileName, ConversionTarget target, JsonSegments segments, string sql)
    {
        try
        {
            using var command = target.Connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.Add(new DuckDBParameter("segment", segments.Segment.ToArray()));
            return command.ExecuteScalar();
        }
        catch (DuckDBException exception) when (!exception.Message.Contains("INTERRUPT", StringComparison.OrdinalIgnoreCase))
        {
            throw new FileConversionException(FileConverter.Describe(fileName, "JSON", exception.Message,
                where: $" (in values {segments.ValuesBefore + 1} to {segments.Values})"), exception);
        }
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
    /// The row's fields (<c>"name" TYPE</c>) from the structure of the sampled objects, or
    /// null when they are not objects. Nested objects become STRUCTs, arrays lists, integers
    /// BIGINT; a key that was only ever null, or whose values disagree, is kept as JSON.
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

        return [.. document.RootElement.EnumerateObject().Select(p => $"{Quote(p.Name)} {TypeOf(p.Value)}")];
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
