using DuckDB.NET.Data;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// The DuckDB side of one conversion: a private in-memory DuckDB with the new database file
/// attached as <c>target</c>, encrypted with the file's key, and the table names taken so far.
/// Disposing without <see cref="Finish"/> leaves the caller to delete the partial file.
/// </summary>
internal sealed class ConversionTarget : IDisposable
{
    private const string Catalog = "target";

    private readonly DuckDBConnection connection;
    private readonly HashSet<string> names = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<string> tables = [];

    private ConversionTarget(DuckDBConnection connection) => this.connection = connection;

    public DuckDBConnection Connection => connection;

    /// <summary>DuckDB's memory for a conversion (its buffer pool; the library's own code and structures come on top).</summary>
    public const string MemoryLimit = "64MB";

    /// <summary>
    /// Opens the private DuckDB and attaches a new encrypted database at <paramref name="databasePath"/>.
    /// This DuckDB has no OpenSSL (no httpfs), so writing an encrypted file takes its built-in
    /// mbedTLS, which it calls unsafe because its random nonces come from a non-cryptographic
    /// generator; FileConverterTests checks that the nonces of a large file's blocks never repeat.
    /// </summary>
    public static ConversionTarget Open(string databasePath, string encryptionKey, string spillDirectory)
    {
        var connection = new DuckDBConnection("Data Source=:memory:");
        try
        {
            connection.Open();
            Execute(connection, "SET autoinstall_known_extensions = false");
            Execute(connection, "SET autoload_known_extensions = false");
            // Bounded so that a conversion of any size leaves the service's memory flat (the 2 GiB
            // test stays under 300 MB in all): DuckDB spills what does not fit to encrypted temp
            // files. One thread: a second doubles the read buffers in flight and gains little when
            // the input is one pipe.
            Execute(connection, $"SET memory_limit = '{MemoryLimit}'");
            Execute(connection, "SET threads = 1");
            Execute(connection, "SET preserve_insertion_order = false");
            Execute(connection, $"SET temp_directory = {Literal(spillDirectory)}");
            Execute(connection, "SET temp_file_encryption = true");
            Execute(connection, "SET force_mbedtls_unsafe = true");
            Execute(connection, $"ATTACH {Literal(databasePath)} AS {Catalog} (ENCRYPTION_KEY {Literal(encryptionKey)})");
            return new ConversionTarget(connection);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>Opens a converted database read-only (for checks): <c>ATTACH … (ENCRYPTION_KEY …, READ_ONLY)</c>, then <c>USE</c>.</summary>
    public static DuckDBConnection OpenReadOnly(string databasePath, string encryptionKey)
    {
        var connection = new DuckDBConnection("Data Source=:memory:");
        try
        {
            connection.Open();
            Execute(connection, "SET autoinstall_known_extensions = false");
            Execute(connection, "SET autoload_known_extensions = false");
            Execute(connection, $"ATTACH {Literal(databasePath)} AS converted (ENCRYPTION_KEY {Literal(encryptionKey)}, READ_ONLY)");
            Execute(connection, "USE converted");
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>A table name not yet taken in this file (compared as DuckDB does, ignoring case): the name, else with _2, _3, ….</summary>
    public string Claim(string table)
    {
        var name = table;
        for (var n = 2; !names.Add(name); n++)
        {
            name = FileFormats.WithSuffix(table, "_" + n);
        }

        tables.Add(name);
        return name;
    }

    /// <summary>The table's full name in the target, quoted.</summary>
    public static string Qualified(string table) => $"{Catalog}.main.{Quote(table)}";

    public void Execute(string sql) => Execute(connection, sql);

    public DuckDBAppender CreateAppender(string table) => connection.CreateAppender(Catalog, "main", table);

    /// <summary>Stops the running statement (DuckDB checks between chunks); the statement then fails with an INTERRUPT error.</summary>
    public void Interrupt() => connection.NativeConnection.Interrupt();

    /// <summary>Counts every table's rows and detaches the database, which checkpoints it into the file.</summary>
    public IReadOnlyList<ConvertedTable> Finish()
    {
        var converted = new List<ConvertedTable>(tables.Count);
        foreach (var table in tables)
        {
            using var command = connection.CreateCommand();
            command.CommandText = $"SELECT count(*) FROM {Qualified(table)}";
            converted.Add(new ConvertedTable(table, Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture)));
        }

        Execute(connection, $"DETACH {Catalog}");
        return converted;
    }

    public void Dispose() => connection.Dispose();

    /// <summary>An identifier in double quotes, inner quotes doubled.</summary>
    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>A string literal in single quotes, inner quotes doubled (DuckDB takes no parameters in ATTACH or SET).</summary>
    public static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static void Execute(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
