namespace Caravan.Api.Query;

/// <summary>The quoting and comment rules of one SQL dialect, as far as finding statement ends and words needs them.</summary>
public sealed record SqlDialect(
    bool DollarQuotes = false,
    bool HashComments = false,
    bool Backticks = false,
    bool Brackets = false,
    bool NestedComments = false,
    bool ExecutableComments = false,
    bool EscapeStrings = false,
    bool TripleQuotes = false,
    bool DashCommentNeedsSpace = false,
    bool SlashComments = false,
    bool DoubleDollarStrings = false,
    bool UnicodeNames = false,
    bool DollarInNames = true);

/// <summary>What a token is: a bare word (keyword or name), a quoted name, a string, a number or one other character.</summary>
public enum SqlTokenKind
{
    Word,
    Name,

    /// <summary>A PostgreSQL <c>U&amp;"…"</c> name, whose escapes are decoded by the reader (it may be followed by <c>UESCAPE</c>).</summary>
    UnicodeName,

    /// <summary>A string literal.</summary>
    Text,
    Number,
    Symbol,
}

/// <summary>
/// One token: its kind, where it is in the text, and for a quoted name its text without the quotes
/// (doubled quotes undone). <see cref="Closed"/> is false for a string, name or comment the text ends inside.
/// </summary>
public readonly record struct SqlToken(SqlTokenKind Kind, int Start, int End, string? Name = null, bool Closed = true);

/// <summary>One way of reading a text where the dialect's meaning depends on the server: backslash escapes in strings, <c>$$</c> strings.</summary>
public readonly record struct SqlReading(bool BackslashEscapes, bool DollarStrings);

/// <summary>
/// The lexer of every dialect: knows quotes, dollar quotes, comments and names, so neither a ';'
/// nor a word inside any of them counts. Statement ends (<see cref="Split"/>) and the statement
/// check (<see cref="StatementCheck"/>) both read its tokens. Where a dialect's meaning depends on
/// a server setting (backslash escapes, Snowflake's <c>$$</c>), every reading is tried: the text
/// must hold one statement in all of them. This is a first check only; the database refuses what
/// it cannot run as one statement wherever it can.
/// </summary>
public static class SqlText
{
    /// <summary>The number of non-empty statements, and the text of the first one (without its ';' and what follows).</summary>
    public static (int Count, string First) Split(string sql, SqlDialect dialect)
    {
        var count = -1;
        var first = string.Empty;
        foreach (var reading in Readings(sql, dialect))
        {
            var (readCount, readFirst) = Statements(sql, Tokens(sql, dialect, reading));
            if (readCount > count)
            {
                (count, first) = (readCount, readFirst);
            }
        }

        return (count, first);
    }

    /// <summary>The readings a text must pass in: two only where the text holds what they read differently.</summary>
    public static IEnumerable<SqlReading> Readings(string sql, SqlDialect dialect)
    {
        var backslashes = sql.Contains('\\', StringComparison.Ordinal) ? new[] { false, true } : [false];
        var dollars = dialect.DoubleDollarStrings && sql.Contains("$$", StringComparison.Ordinal) ? new[] { true, false } : [dialect.DoubleDollarStrings];
        foreach (var backslash in backslashes)
        {
            foreach (var dollar in dollars)
            {
                yield return new SqlReading(backslash, dollar);
            }
        }
    }

    /// <summary>The tokens of the text in one reading; whitespace and comments are dropped.</summary>
    public static List<SqlToken> Tokens(string sql, SqlDialect dialect, SqlReading reading)
    {
        var tokens = new List<SqlToken>();
        var i = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            var next = i + 1 < sql.Length ? sql[i + 1] : '\0';
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '-' && next == '-'
                && (!dialect.DashCommentNeedsSpace || i + 2 >= sql.Length || char.IsWhiteSpace(sql[i + 2]) || char.IsControl(sql[i + 2]))
                || c == '#' && dialect.HashComments
                || c == '/' && next == '/' && dialect.SlashComments)
            {
                i = LineEnd(sql, i);
            }
            else if (c == '/' && next == '*')
            {
                if (dialect.ExecutableComments && ExecutableOpening(sql, i) is var opening and > 0)
                {
                    // MySQL runs the text of /*! ... */ (MariaDB also /*M! ... */): it is code.
                    i += opening;
                    continue;
                }

                var end = BlockCommentEnd(sql, i, dialect.NestedComments);
                if (end < 0)
                {
                    tokens.Add(new SqlToken(SqlTokenKind.Symbol, i, sql.Length, Closed: false));
                    break;
                }

                i = end;
            }
            else if (c == '*' && next == '/' && dialect.ExecutableComments)
            {
                i += 2;
            }
            else if (c == '\'')
            {
                i = Add(tokens, SqlTokenKind.Text, i, dialect.TripleQuotes && Starts(sql, i, "'''")
                    ? TripleEnd(sql, i, '\'')
                    : QuotedEnd(sql, i, '\'', reading.BackslashEscapes), sql.Length);
            }
            else if (c == '"')
            {
                if (dialect.TripleQuotes && Starts(sql, i, "\"\"\""))
                {
                    i = Add(tokens, SqlTokenKind.Text, i, TripleEnd(sql, i, '"'), sql.Length);
                }
                else
                {
                    var end = QuotedEnd(sql, i, '"', reading.BackslashEscapes && !dialect.DollarQuotes);
                    i = AddName(tokens, sql, SqlTokenKind.Name, i, end, '"');
                }
            }
            else if (c == '`' && dialect.Backticks)
            {
                i = AddName(tokens, sql, SqlTokenKind.Name, i, QuotedEnd(sql, i, '`', escapes: false), '`');
            }
            else if (c == '[' && dialect.Brackets)
            {
                i = AddName(tokens, sql, SqlTokenKind.Name, i, QuotedEnd(sql, i, ']', escapes: false), ']');
            }
            else if (c == '$' && dialect.DollarQuotes && !IsNameChar(Before(sql, i), dialect) && DollarTag(sql, i) is { } tag)
            {
                var close = sql.IndexOf(tag, i + tag.Length, StringComparison.Ordinal);
                i = Add(tokens, SqlTokenKind.Text, i, close < 0 ? -1 : close + tag.Length, sql.Length);
            }
            else if (c == '$' && next == '$' && dialect.DoubleDollarStrings && reading.DollarStrings)
            {
                var close = sql.IndexOf("$$", i + 2, StringComparison.Ordinal);
                i = Add(tokens, SqlTokenKind.Text, i, close < 0 ? -1 : close + 2, sql.Length);
            }
            else if (char.IsLetter(c) || c == '_')
            {
                i = Word(tokens, sql, i, dialect, reading);
            }
            else if (char.IsAsciiDigit(c) || c == '.' && char.IsAsciiDigit(next))
            {
                i = Add(tokens, SqlTokenKind.Number, i, NumberEnd(sql, i), sql.Length);
            }
            else
            {
                i = Add(tokens, SqlTokenKind.Symbol, i, i + 1, sql.Length);
            }
        }

        return tokens;
    }

    /// <summary>The text of a token (a word, a symbol, a string with its quotes).</summary>
    public static ReadOnlySpan<char> Text(string sql, SqlToken token) => sql.AsSpan(token.Start, token.End - token.Start);

    private static (int Count, string First) Statements(string sql, List<SqlToken> tokens)
    {
        var count = 0;
        var firstEnd = -1;
        var lastEnd = -1;
        var statementHasCode = false;
        foreach (var token in tokens)
        {
            if (token.Kind == SqlTokenKind.Symbol && sql[token.Start] == ';' && token.Closed)
            {
                if (statementHasCode)
                {
                    count++;
                    firstEnd = firstEnd < 0 ? lastEnd : firstEnd;
                }

                statementHasCode = false;
                continue;
            }

            if (token.Closed || token.Kind != SqlTokenKind.Symbol)
            {
                // An unclosed comment at the end is no code; an unclosed string is.
                statementHasCode = true;
                lastEnd = token.End;
            }
        }

        if (statementHasCode)
        {
            count++;
            firstEnd = firstEnd < 0 ? lastEnd : firstEnd;
        }

        return (count, firstEnd < 0 ? string.Empty : sql[..firstEnd]);
    }

    /// <summary>A bare word; <c>E'…'</c> and <c>U&amp;'…'</c>/<c>U&amp;"…"</c> prefixes make it a string or a unicode name instead.</summary>
    private static int Word(List<SqlToken> tokens, string sql, int start, SqlDialect dialect, SqlReading reading)
    {
        var i = start;
        while (i < sql.Length && IsNameChar(sql[i], dialect))
        {
            i++;
        }

        var length = i - start;
        if (length == 1 && i < sql.Length && sql[i] == '\'' && dialect.EscapeStrings && sql[start] is 'E' or 'e')
        {
            return Add(tokens, SqlTokenKind.Text, start, QuotedEnd(sql, i, '\'', escapes: true), sql.Length);
        }

        if (length == 1 && dialect.UnicodeNames && sql[start] is 'U' or 'u' && i + 1 < sql.Length && sql[i] == '&' && sql[i + 1] is '\'' or '"')
        {
            return sql[i + 1] == '\''
                ? Add(tokens, SqlTokenKind.Text, start, QuotedEnd(sql, i + 1, '\'', reading.BackslashEscapes), sql.Length)
                : AddName(tokens, sql, SqlTokenKind.UnicodeName, start, QuotedEnd(sql, i + 1, '"', escapes: false), '"', quoteAt: i + 1);
        }

        return Add(tokens, SqlTokenKind.Word, start, i, sql.Length);
    }

    /// <summary>Adds a token that ends at <paramref name="end"/>, or at the end of the text (unclosed) when that is -1; returns where to go on.</summary>
    private static int Add(List<SqlToken> tokens, SqlTokenKind kind, int start, int end, int length)
    {
        tokens.Add(new SqlToken(kind, start, end < 0 ? length : end, Closed: end >= 0));
        return end < 0 ? length : end;
    }

    /// <summary>A quoted name, its text without the quotes and with doubled closing quotes undone.</summary>
    private static int AddName(List<SqlToken> tokens, string sql, SqlTokenKind kind, int start, int end, char close, int? quoteAt = null)
    {
        var open = quoteAt ?? start;
        var inner = end < 0 ? sql[(open + 1)..] : sql[(open + 1)..(end - 1)];
        var doubled = new string(close, 2);
        tokens.Add(new SqlToken(kind, start, end < 0 ? sql.Length : end, inner.Replace(doubled, close.ToString(), StringComparison.Ordinal), end >= 0));
        return end < 0 ? sql.Length : end;
    }

    private static char Before(string sql, int index) => index > 0 ? sql[index - 1] : ' ';

    private static bool IsNameChar(char c, SqlDialect dialect) => char.IsLetterOrDigit(c) || c == '_' || c == '$' && dialect.DollarInNames;

    private static bool Starts(string sql, int index, string text) => string.CompareOrdinal(sql, index, text, 0, text.Length) == 0;

    /// <summary>How many characters open an executable comment at <paramref name="index"/> (<c>/*!</c>, <c>/*M!</c> or <c>/*+</c>, and a version number), or 0.</summary>
    private static int ExecutableOpening(string sql, int index)
    {
        var i = index + 2;
        if (Starts(sql, i, "M!"))
        {
            i += 2;
        }
        else if (i < sql.Length && sql[i] is '!' or '+')
        {
            i++;
        }
        else
        {
            return 0;
        }

        // The server version the text is meant for (/*!50110 … */): not part of the code.
        var digits = 0;
        while (digits < 6 && i < sql.Length && char.IsAsciiDigit(sql[i]))
        {
            i++;
            digits++;
        }

        return i - index;
    }

    /// <summary>Digits, a fraction and an exponent: <c>1.</c> before a word is a number, so that word is not read as a qualified name.</summary>
    private static int NumberEnd(string sql, int index)
    {
        var i = index;
        while (i < sql.Length && char.IsAsciiDigit(sql[i]))
        {
            i++;
        }

        if (i < sql.Length && sql[i] == '.')
        {
            i++;
            while (i < sql.Length && char.IsAsciiDigit(sql[i]))
            {
                i++;
            }
        }

        if (i + 1 < sql.Length && sql[i] is 'e' or 'E' && (char.IsAsciiDigit(sql[i + 1]) || sql[i + 1] is '+' or '-' && i + 2 < sql.Length && char.IsAsciiDigit(sql[i + 2])))
        {
            i += 2;
            while (i < sql.Length && char.IsAsciiDigit(sql[i]))
            {
                i++;
            }
        }

        return i;
    }

    private static int LineEnd(string sql, int index)
    {
        var end = sql.IndexOfAny(['\n', '\r'], index);
        return end < 0 ? sql.Length : end + 1;
    }

    /// <summary>The index after the comment that opens at <paramref name="index"/>, or -1 when the text ends inside it.</summary>
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

        return -1;
    }

    /// <summary>The index after a quoted run (a doubled quote is an escaped one), or -1 when the text ends inside it.</summary>
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

        return -1;
    }

    private static int TripleEnd(string sql, int index, char quote)
    {
        var close = sql.IndexOf(new string(quote, 3), index + 3, StringComparison.Ordinal);
        return close < 0 ? -1 : close + 3;
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
