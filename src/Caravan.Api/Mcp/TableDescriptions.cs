using System.Text;

namespace Caravan.Api.Mcp;

/// <summary>
/// The catalog statement that lists a table's columns, per family of databases, each answering
/// the columns <c>name</c>, <c>type</c> and <c>nullable</c>. It runs through the query gateway
/// like any other statement (read-only, limited, audited). The schema and table names the agent
/// sent are never put into the SQL as text: they go in as hexadecimal literals of their UTF-8
/// (UTF-16 for SQL Server) bytes that the database decodes itself, so no quoting rule is involved
/// and no name, however strange, can change the statement.
/// </summary>
internal static class TableDescriptions
{
    /// <summary>The statement for a source of <paramref name="type"/>; null when Caravan cannot describe tables of that type.</summary>
    public static string? For(string type, string schema, string table) => type switch
    {
        "POSTGRES" or "SUPABASE" => $"""
            SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable
            FROM pg_catalog.pg_attribute a
            JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = {PostgresText(schema)} AND c.relname = {PostgresText(table)}
              AND c.relkind IN ('r', 'v', 'm', 'f', 'p') AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
        "MYSQL" or "SINGLESTORE" => $"""
            SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, IS_NULLABLE = 'YES' AS nullable
            FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = {MySqlText(schema)} AND TABLE_NAME = {MySqlText(table)}
            ORDER BY ORDINAL_POSITION
            """,
        // system.columns lists a table's columns in their order; its "position" column is newer
        // than some servers still in use (18.16 has none), so the statement does not sort by it.
        "CLICKHOUSE" => $"""
            SELECT name, type, startsWith(type, 'Nullable(') AS nullable
            FROM system.columns
            WHERE database = unhex('{Hex(schema)}') AND table = unhex('{Hex(table)}')
            """,
        "MOTHERDUCK" => $"""
            SELECT column_name AS name, data_type AS type, is_nullable = 'YES' AS nullable
            FROM information_schema.columns
            WHERE table_catalog = current_database()
              AND table_schema = decode(unhex('{Hex(schema)}')) AND table_name = decode(unhex('{Hex(table)}'))
            ORDER BY ordinal_position
            """,
        "MSSQL" => $"""
            SELECT c.COLUMN_NAME AS name,
                c.DATA_TYPE + CASE
                    WHEN c.CHARACTER_MAXIMUM_LENGTH = -1 THEN '(max)'
                    WHEN c.CHARACTER_MAXIMUM_LENGTH IS NOT NULL THEN '(' + CAST(c.CHARACTER_MAXIMUM_LENGTH AS varchar(11)) + ')'
                    WHEN c.DATA_TYPE IN ('decimal', 'numeric') THEN '(' + CAST(c.NUMERIC_PRECISION AS varchar(11)) + ',' + CAST(c.NUMERIC_SCALE AS varchar(11)) + ')'
                    ELSE '' END AS type,
                CAST(CASE WHEN c.IS_NULLABLE = 'YES' THEN 1 ELSE 0 END AS bit) AS nullable
            FROM INFORMATION_SCHEMA.COLUMNS c
            WHERE c.TABLE_SCHEMA = {SqlServerText(schema)} AND c.TABLE_NAME = {SqlServerText(table)}
            ORDER BY c.ORDINAL_POSITION
            """,
        _ => null,
    };

    private static string PostgresText(string text) => $"pg_catalog.convert_from(pg_catalog.decode('{Hex(text)}', 'hex'), 'UTF8')";

    private static string MySqlText(string text) => $"CONVERT(UNHEX('{Hex(text)}') USING utf8mb4)";

    private static string SqlServerText(string text) => $"CAST(0x{Convert.ToHexString(Encoding.Unicode.GetBytes(text))} AS nvarchar(128))";

    /// <summary>Only the characters 0-9 and A-F: nothing a SQL parser could read as anything but part of a literal.</summary>
    private static string Hex(string text) => Convert.ToHexString(Encoding.UTF8.GetBytes(text));
}
