using System.Text;

namespace Caravan.Api.Connectors;

/// <summary>
/// Text that Caravan itself puts into a statement (the schema and table names of MCP's
/// describe_table) goes in as hexadecimal literals of its bytes that the database decodes itself,
/// so no quoting rule is involved and no name, however strange, can change the statement. Each
/// engine wraps <see cref="Hex"/> in its dialect's decoding function.
/// </summary>
public static class SqlLiterals
{
    /// <summary>Only the characters 0-9 and A-F: nothing a SQL parser could read as anything but part of a literal.</summary>
    public static string Hex(string text) => Convert.ToHexString(Encoding.UTF8.GetBytes(text));

    /// <summary>The UTF-16 bytes in hexadecimal, for databases whose national strings are UTF-16 (SQL Server).</summary>
    public static string HexUtf16(string text) => Convert.ToHexString(Encoding.Unicode.GetBytes(text));
}
