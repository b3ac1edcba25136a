using System.Globalization;
using DuckDB.NET.Data;
using Microsoft.Data.Sqlite;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// A SQLite database, one table per user table (not <c>sqlite_*</c>, not virtual tables, whose
/// modules may be missing). SQLite's types belong to values, not columns, so a first pass reads
/// which storage classes each column holds: only integers is BIGINT, integers and reals DOUBLE,
/// only blobs BLOB, anything else VARCHAR; an empty column takes its declared type's affinity.
/// </summary>
internal static class SqliteImport
{
    public static void Run(string fileName, string stem, string path, ConversionTarget target, CancellationToken cancellationToken)
    {
        ForgetWal(path);
        var builder = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false };
        try
        {
            using var sqlite = new SqliteConnection(builder.ToString());
            sqlite.Open();
            foreach (var table in UserTables(sqlite))
            {
                cancellationToken.ThrowIfCancellationRequested();
                Copy(sqlite, table, target, target.Claim(FileFormats.TableName(stem, table)), cancellationToken);
            }
        }
        catch (SqliteException exception)
        {
            throw new FileConversionException($"{fileName}: not a readable SQLite database (SQLite error {exception.SqliteErrorCode}).", exception);
        }
    }

    /// <summary>
    /// An uploaded database is one file: bytes 18 and 19 of a WAL-mode file (2) are set to the
    /// rollback journal's (1) in the private copy, so SQLite opens it read-only without wanting
    /// -wal and -shm files beside it.
    /// </summary>
    private static void ForgetWal(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        Span<byte> versions = stackalloc byte[2];
        file.Position = 18;
        if (file.Read(versions) == 2 && versions[0] == 2 && versions[1] == 2)
        {
            file.Position = 18;
            file.Write([1, 1]);
        }
    }

    private static List<string> UserTables(SqliteConnection sqlite)
    {
        using var command = sqlite.CreateCommand();
        command.CommandText = """
            SELECT name FROM sqlite_master
            WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'
            ORDER BY rowid
            """;
        using var reader = command.ExecuteReader();
        var tables = new List<string>();
        while (reader.Read())
        {
            tables.Add(reader.GetString(0));
        }

        return tables;
    }

    private static void Copy(SqliteConnection sqlite, string source, ConversionTarget target, string table, CancellationToken cancellationToken)
    {
        var columns = Columns(sqlite, source);
        if (columns.Count == 0)
        {
            return;
        }

        var definition = string.Join(", ", columns.Select(c => $"{ConversionTarget.Quote(c.Name)} {c.Type}"));
        target.Execute($"CREATE TABLE {ConversionTarget.Qualified(table)} ({definition})");
        using var command = sqlite.CreateCommand();
        command.CommandText = $"SELECT {string.Join(", ", columns.Select(c => ConversionTarget.Quote(c.Name)))} FROM {ConversionTarget.Quote(source)}";
        using var reader = command.ExecuteReader();
        using var appender = target.CreateAppender(table);
        var rows = 0L;
        while (reader.Read())
        {
            var row = appender.CreateRow();
            for (var i = 0; i < columns.Count; i++)
            {
                AppendValue(row, columns[i].Type, reader.GetValue(i));
            }

            row.EndRow();
            if (++rows % 4096 == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
    }

    private static void AppendValue(IDuckDBAppenderRow row, string type, object value)
    {
        switch (value)
        {
            case DBNull:
                row.AppendNullValue();
                break;
            case long integer when type == "BIGINT":
                row.AppendValue(integer);
                break;
            case long or double when type == "DOUBLE":
                row.AppendValue(System.Convert.ToDouble(value, CultureInfo.InvariantCulture));
                break;
            case byte[] blob when type == "BLOB":
                row.AppendValue(blob);
                break;
            case byte[] blob:
                row.AppendValue(System.Convert.ToHexString(blob));
                break;
            default:
                row.AppendValue(System.Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }
    }

    /// <summary>Each column's DuckDB type, from one scan of the table counting the storage classes of its values.</summary>
    private static List<(string Name, string Type)> Columns(SqliteConnection sqlite, string source)
    {
        var declared = new List<(string Name, string Declared)>();
        using (var info = sqlite.CreateCommand())
        {
            info.CommandText = "SELECT name, type FROM pragma_table_info($table)";
            info.Parameters.AddWithValue("$table", source);
            using var reader = info.ExecuteReader();
            while (reader.Read())
            {
                declared.Add((reader.GetString(0), reader.IsDBNull(1) ? "" : reader.GetString(1)));
            }
        }

        if (declared.Count == 0)
        {
            return [];
        }

        string[] classes = ["integer", "real", "text", "blob"];
        using var scan = sqlite.CreateCommand();
        scan.CommandText = "SELECT " + string.Join(", ", declared.SelectMany(c => classes.Select(k =>
            $"max(typeof({ConversionTarget.Quote(c.Name)}) = '{k}')"))) + $" FROM {ConversionTarget.Quote(source)}";
        using var seen = scan.ExecuteReader();
        seen.Read();
        return [.. declared.Select((column, i) =>
        {
            bool Has(int k) => !seen.IsDBNull(i * 4 + k) && seen.GetInt64(i * 4 + k) == 1;
            var (integer, real, text, blob) = (Has(0), Has(1), Has(2), Has(3));
            var type = (integer, real, text, blob) switch
            {
                (false, false, false, false) => ByAffinity(column.Declared),
                (true, false, false, false) => "BIGINT",
                (_, true, false, false) => "DOUBLE",
                (false, false, false, true) => "BLOB",
                _ => "VARCHAR",
            };
            return (column.Name, type);
        })];
    }

    /// <summary>SQLite's rules for a declared type's affinity (section 3.1 of its datatype documentation).</summary>
    private static string ByAffinity(string declared)
    {
        var upper = declared.ToUpperInvariant();
        return upper switch
        {
            _ when upper.Contains("INT", StringComparison.Ordinal) => "BIGINT",
            _ when upper.Contains("CHAR", StringComparison.Ordinal) || upper.Contains("CLOB", StringComparison.Ordinal) || upper.Contains("TEXT", StringComparison.Ordinal) => "VARCHAR",
            _ when upper.Contains("BLOB", StringComparison.Ordinal) || upper.Length == 0 => "BLOB",
            _ => "DOUBLE",
        };
    }
}
