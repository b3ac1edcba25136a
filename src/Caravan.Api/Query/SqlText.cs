namespace Caravan.Api.Query;

/// <summary>The quoting and comment rules of one SQL dialect, as far as finding statement ends needs them.</summary>
public sealed record SqlDialect(
    bool DollarQuotes = false,
    bool HashComments = false,
    bool Backticks = false,
    bool Brackets = false,
    bool NestedComments = false,
    bool ExecutableComments = false,
    bool EscapeStrings = false,
    bool TripleQuotes = false,
    bool DashCommentNeedsSpace = false)
{
    public static SqlDialect Postgres { get; } = new(DollarQuotes: true, NestedComments: true, EscapeStrings: true);

    public static SqlDialect MySql { get; } = new(HashComments: true, Backticks: true, ExecutableComments: true, DashCommentNeedsSpace: true);

    public static SqlDialect ClickHouse { get; } = new(Backticks: true);

    public static SqlDialect SqlServer { get; } = new(Brackets: true, NestedComments: true);

    public static SqlDialect DuckDb { get; } = new(DollarQuotes: true, NestedComments: true, EscapeStrings: true);

    /// <summary>BigQuery, Databricks (Spark SQL) and Snowflake: backticks or double quotes, C-style comments.</summary>
    public static SqlDialect Warehouse { get; } = new(Backticks: true, HashComments: true, TripleQuotes: true);
}

/// <summary>
/// Finds where statements end, without running them: a lexer that knows quotes, dollar quotes,
/// comments and identifiers, so a ';' inside any of them does not count. Where a dialect's
/// meaning depends on a server setting (backslash escapes in strings), every reading is tried
/// and the text is one statement only if it is one statement in all of them. This is the first
/// check only; the database refuses what it cannot run as one statement wherever it can.
/// </summary>
public static class SqlText
{
    /// <summary>The number of non-empty statements, and the text of the first one (without its ';' and what follows).</summary>
    public static (int Count, string First) Split(string sql, SqlDialect dialect)
    {
        var plain = Scan(sql, dialect, backslashEscapes: false);
        var escaped = Scan(sql, dialect, backslashEscapes: true);
        var count = Math.Max(plain.Count, escaped.Count);
        return (count, plain.Count >= escaped.Count ? plain.First : escaped.First);
    }

    private static (int Count, string First) Scan(string sql, SqlDialect dialect, bool backslashEscapes)
    {
        var count = 0;
        var statementHasCode = false;
        var firstEnd = -1;
        var lastCode = -1;
        var i = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            var next = i + 1 < sql.Length ? sql[i + 1] : '\0';
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }

            if (c == '-' && next == '-'
                && (!dialect.DashCommentNeedsSpace || i + 2 >= sql.Length || char.IsWhiteSpace(sql[i + 2]) || char.IsControl(sql[i + 2])))
            {
                i = LineEnd(sql, i);
                continue;
            }

            if (c == '#' && dialect.HashComments)
            {
                i = LineEnd(sql, i);
                continue;
            }

            if (c == '/' && next == '*')
            {
                var executable = dialect.ExecutableComments && i + 2 < sql.Length && sql[i + 2] is '!' or '+';
                if (executable)
                {
                    // MySQL runs the text of /*! ... */: it is code, and its ';' count.
                    i += 3;
                    continue;
                }

                i = BlockCommentEnd(sql, i, dialect.NestedComments);
                continue;
            }

            if (c == '*' && next == '/' && dialect.ExecutableComments)
            {
                i += 2;
                continue;
            }

            if (c == ';')
            {
                if (statementHasCode)
                {
                    count++;
                    if (firstEnd < 0)
                    {
                        firstEnd = lastCode + 1;
                    }
                }

                statementHasCode = false;
                i++;
                continue;
            }

            statementHasCode = true;
            var start = i;
            if (c == '\'')
            {
                var escapes = backslashEscapes || (dialect.EscapeStrings && i > 0 && sql[i - 1] is 'E' or 'e' && !IsIdentifierChar(Before(sql, i - 1)));
                i = dialect.TripleQuotes && Starts(sql, i, "'''") ? TripleEnd(sql, i, '\'') : QuotedEnd(sql, i, '\'', escapes);
            }
            else if (c == '"')
            {
                i = dialect.TripleQuotes && Starts(sql, i, "\"\"\"") ? TripleEnd(sql, i, '"') : QuotedEnd(sql, i, '"', backslashEscapes && !dialect.DollarQuotes);
            }
            else if (c == '`' && dialect.Backticks)
            {
                i = QuotedEnd(sql, i, '`', escapes: false);
            }
            else if (c == '[' && dialect.Brackets)
            {
                i = QuotedEnd(sql, i, ']', escapes: false);
            }
            else if (c == '$' && dialect.DollarQuotes && !IsIdentifierChar(Before(sql, i)) && DollarTag(sql, i) is { } tag)
            {
                var close = sql.IndexOf(tag, i + tag.Length, StringComparison.Ordinal);
                i = close < 0 ? sql.Length : close + tag.Length;
            }
            else
            {
                i++;
            }

            lastCode = Math.Max(start, i - 1);
        }

        if (statementHasCode)
        {
            count++;
            if (firstEnd < 0)
            {
                firstEnd = lastCode + 1;
            }
        }

        return (count, firstEnd < 0 ? string.Empty : sql[..Math.Min(firstEnd, sql.Length)]);
    }

    private static char Before(string sql, int index) => index > 0 ? sql[index - 1] : ' ';

    private static bool IsIdentifierChar(char c) => char.IsLetterOrDigit(c) || c is '_' or '$';

    private static bool Starts(string sql, int index, string text) => string.CompareOrdinal(sql, index, text, 0, text.Length) == 0;

    private static int LineEnd(string sql, int index)
    {
        var end = sql.IndexOfAny(['\n', '\r'], index);
        return end < 0 ? sql.Length : end + 1;
    }

    private static int BlockCommentEnd(string sql, int index, bool nested)
    {
        var depth = 0;
        var i = index;
        while (i < sql.Length)
        {
            if (sql[i] == '/' && i + 1 < sql.Length && sql[i + 1] == '*')
            {
                depth = nested || depth == 0 ? depth + 1 : depth;
                i += 2;
            }
            else if (sql[i] == '*' && i + 1 < sql.Length && sql[i + 1] == '/')
            {
                depth--;
                i += 2;
                if (depth == 0)
                {
                    return i;
                }
            }
            else
            {
                i++;
            }
        }

        return sql.Length;
    }

    /// <summary>The index after a quoted run; a doubled quote is an escaped one.</summary>
    private static int QuotedEnd(string sql, int index, char quote, bool escapes)
    {
        var i = index + 1;
        while (i < sql.Length)
        {
            var c = sql[i];
            if (escapes && c == '\\')
            {
                i += 2;
                continue;
            }

            if (c == quote)
            {
                if (i + 1 < sql.Length && sql[i + 1] == quote)
                {
                    i += 2;
                    continue;
                }

                return i + 1;
            }

            i++;
        }

        return sql.Length;
    }

    private static int TripleEnd(string sql, int index, char quote)
    {
        var close = sql.IndexOf(new string(quote, 3), index + 3, StringComparison.Ordinal);
        return close < 0 ? sql.Length : close + 3;
    }

    /// <summary>The <c>$tag$</c> that opens a dollar-quoted string at <paramref name="index"/>, if one does.</summary>
    private static string? DollarTag(string sql, int index)
    {
        var i = index + 1;
        if (i < sql.Length && sql[i] == '$')
        {
            return "$$";
        }

        if (i >= sql.Length || !(char.IsLetter(sql[i]) || sql[i] == '_'))
        {
            return null;
        }

        while (i < sql.Length && (char.IsLetterOrDigit(sql[i]) || sql[i] == '_'))
        {
            i++;
        }

        return i < sql.Length && sql[i] == '$' ? sql[index..(i + 1)] : null;
    }
}
