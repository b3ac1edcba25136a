using System.Text.RegularExpressions;
using Caravan.Api.Hosting;
using DuckDB.NET.Data;

namespace Caravan.Api.Connectors.Files;

/// <summary>One table of a converted file and its exact number of rows.</summary>
public sealed record ConvertedTable(string Name, long Rows);

/// <summary>
/// Turns one uploaded file into a new DuckDB database file, encrypted by DuckDB, that the query
/// route opens read-only. Plaintext never reaches the disk for text files (DuckDB reads them
/// through a named pipe); Parquet and SQLite need random access and get a temporary plaintext
/// copy in the private work folder, deleted before the call returns; workbooks are read from the
/// seekable raw stream. Memory does not grow with the file: DuckDB runs with a 128 MB limit and
/// spills (encrypted) to the work folder, the other readers stream row by row.
/// </summary>
public static partial class FileConverter
{
    /// <summary>
    /// Converts <paramref name="fileName"/> (read through <paramref name="openRaw"/>, which may be
    /// called more than once) into a new database at <paramref name="databasePath"/>. Throws
    /// <see cref="FileConversionException"/> for content that cannot be converted and
    /// <see cref="OperationCanceledException"/> when cancelled; either way no partial database
    /// and no temporary file is left behind.
    /// </summary>
    public static Task<IReadOnlyList<ConvertedTable>> ConvertAsync(
        FileFormat format, string fileName, string stem, Func<Stream> openRaw,
        string databasePath, string encryptionKey, string workDirectory, CancellationToken cancellationToken) =>
        Task.Run(() => Convert(format, fileName, stem, openRaw, databasePath, encryptionKey, workDirectory, cancellationToken), cancellationToken);

    /// <summary>Opens a converted database read-only, as the current database of a private in-memory DuckDB.</summary>
    public static DuckDBConnection OpenReadOnly(string databasePath, string encryptionKey) =>
        ConversionTarget.OpenReadOnly(databasePath, encryptionKey);

    private static IReadOnlyList<ConvertedTable> Convert(
        FileFormat format, string fileName, string stem, Func<Stream> openRaw,
        string databasePath, string encryptionKey, string workDirectory, CancellationToken cancellationToken)
    {
        if (File.Exists(databasePath))
        {
            throw new IOException("The conversion's database file exists already: " + Path.GetFileName(databasePath));
        }

        var scratch = Path.Combine(workDirectory, "convert-" + Guid.NewGuid().ToString("N"));
        OwnerOnlyFiles.CreateFolder(scratch);
        var finished = false;
        try
        {
            using var target = ConversionTarget.Open(databasePath, encryptionKey, Path.Combine(scratch, "spill"));
            using (cancellationToken.Register(target.Interrupt))
            {
                try
                {
                    Import(format, fileName, stem, openRaw, target, scratch, cancellationToken);
                    cancellationToken.ThrowIfCancellationRequested();
                    var tables = target.Finish();
                    finished = true;
                    return tables;
                }
                catch (DuckDBException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken);
                }
            }
        }
        finally
        {
            if (!finished)
            {
                File.Delete(databasePath);
                File.Delete(databasePath + ".wal");
            }

            Directory.Delete(scratch, recursive: true);
        }
    }

    private static void Import(
        FileFormat format, string fileName, string stem, Func<Stream> openRaw, ConversionTarget target, string scratch,
        CancellationToken cancellationToken)
    {
        switch (format)
        {
            case FileFormat.Csv or FileFormat.Tsv:
                var delimiter = format == FileFormat.Tsv ? '\t' : FileFormats.CsvDelimiter(ReadHead(openRaw));
                TextImport.Csv(fileName, stem, delimiter, openRaw, target, scratch);
                break;
            case FileFormat.Json:
                TextImport.Json(fileName, stem, openRaw, target);
                break;
            case FileFormat.Parquet:
                FromCopy(openRaw, scratch, path =>
                {
                    var table = target.Claim(stem);
                    Run(target, fileName, "Parquet",
                        $"CREATE TABLE {ConversionTarget.Qualified(table)} AS SELECT * FROM read_parquet({ConversionTarget.Literal(path)})");
                }, cancellationToken);
                break;
            case FileFormat.Sqlite:
                FromCopy(openRaw, scratch, path => SqliteImport.Run(fileName, stem, path, target, cancellationToken), cancellationToken);
                break;
            case FileFormat.Xlsx or FileFormat.Xls:
                ExcelImport.Run(format, fileName, stem, openRaw, target, cancellationToken);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, null);
        }
    }

    /// <summary>A plaintext copy for readers that need random access, deleted however the import ends.</summary>
    private static void FromCopy(Func<Stream> openRaw, string scratch, Action<string> import, CancellationToken cancellationToken)
    {
        var path = Path.Combine(scratch, "copy-" + Guid.NewGuid().ToString("N"));
        try
        {
            using (var raw = openRaw())
            using (var copy = new FileStream(path, OwnerOnlyCreate()))
            {
                raw.CopyToAsync(copy, 1 << 20, cancellationToken).GetAwaiter().GetResult();
            }

            import(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static FileStreamOptions OwnerOnlyCreate()
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnlyFiles.FileMode;
        }

        return options;
    }

    private static byte[] ReadHead(Func<Stream> openRaw)
    {
        using var raw = openRaw();
        var head = new byte[FileFormats.HeadBytes];
        var length = raw.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return head[..length];
    }

    /// <summary>
    /// Runs a reading statement and turns DuckDB's complaint about the content into a message for
    /// the file's owner. DuckDB's own messages quote the offending line or value, so only the
    /// line number and the kind of problem are kept.
    /// </summary>
    internal static void Run(ConversionTarget target, string fileName, string kind, string sql)
    {
        try
        {
            target.Execute(sql);
        }
        catch (DuckDBException exception) when (!exception.Message.Contains("INTERRUPT", StringComparison.OrdinalIgnoreCase))
        {
            throw new FileConversionException(Describe(fileName, kind, exception.Message), exception);
        }
    }

    /// <remarks><paramref name="where"/>: where the problem is when DuckDB names no line.</remarks>
    internal static string Describe(string fileName, string kind, string duckDbMessage, string where = "")
    {
        if (duckDbMessage.Contains("Out of Memory", StringComparison.OrdinalIgnoreCase))
        {
            // Not the file's fault: say what ran out, and never "not a valid file".
            return $"{fileName}: the conversion ran out of memory (DuckDB's limit for a conversion is {ConversionTarget.MemoryLimit}).";
        }

        var line = LineNumber().Match(duckDbMessage);
        if (line.Success && where.Length == 0)
        {
            where = $" (line {line.Groups[1].Value})";
        }

        var problem = duckDbMessage switch
        {
            _ when Has(duckDbMessage, "unicode") || Has(duckDbMessage, "utf-8") || Has(duckDbMessage, "utf8") => "it is not UTF-8 text",
            _ when Has(duckDbMessage, "number of columns") || Has(duckDbMessage, "too many columns") => $"a line has a different number of columns than the header{where}",
            _ when Has(duckDbMessage, "unterminated quote") || Has(duckDbMessage, "quote") => $"a quoted value is not closed{where}",
            _ when Has(duckDbMessage, "could not convert") || Has(duckDbMessage, "conversion error") => $"a value does not match the type of its column, which was guessed from the first rows{where}",
            _ when Has(duckDbMessage, "maximum_object_size") => $"one JSON object is larger than {TextImport.MaxJsonObjectBytes >> 20} MB{where}",
            _ when Has(duckDbMessage, "malformed json") || Has(duckDbMessage, "json") => $"it is not valid JSON or NDJSON{where}",
            _ => $"it could not be read as {kind}{where}",
        };
        return $"{fileName}: not a valid {kind} file: {problem}.";

        static bool Has(string text, string part) => text.Contains(part, StringComparison.OrdinalIgnoreCase);
    }

    [GeneratedRegex(@"\bline:?\s*(\d+)", RegexOptions.IgnoreCase)]
    private static partial Regex LineNumber();
}
