using System.Collections;

namespace Caravan.Api.Query;

/// <summary>
/// The read-only check of one dialect, which the gateway runs on every statement before the engine
/// sees it (the query route and MCP's <c>run_query</c> alike), so a refused statement is never sent.
/// It reads the tokens of <see cref="SqlText"/>: words inside strings, comments and quoted names do
/// not count, while a quoted name still names what it names (<c>"set_config"</c>, <c>[xp_cmdshell]</c>,
/// <c>U&amp;"\0073et_config"</c>), whatever its case and schema. A statement must start with one of
/// <see cref="Leading"/> (after any '('); a word of <see cref="Words"/> is refused anywhere unless it
/// is qualified (<c>t.update</c>); a function of <see cref="Functions"/> is refused where it is
/// called; a name of <see cref="Names"/> wherever it appears. Where the reading depends on the server
/// (backslash escapes), the statement must pass in every reading. False refusals are the price of a
/// check that cannot see the catalog (a column named <c>into</c> must be quoted); it stops what a
/// statement could do to the session, the server or the uid behind the database's own read-only
/// enforcement, and the source's read-only login stays the real boundary.
/// </summary>
public sealed class StatementCheck
{
    public const string ChangesSettings = "changes session settings, and with them the uid that row-level security reads";
    public const string ControlsTransaction = "controls the transaction Caravan runs each statement in";
    public const string KeepsSessionState = "leaves state in the session that would outlive the query on a pooled connection";
    public const string TakesLocks = "takes locks that outlive the statement or block other sessions";
    public const string StopsSessions = "signals or stops other sessions or server processes";
    public const string ConnectsElsewhere = "connects to another database or server, where it can write, and the connection outlives the query";
    public const string RunsSqlText = "runs an SQL text or a procedure that Caravan cannot check";
    public const string ServerFiles = "reads or writes files on the database server";
    public const string AssignsTransactionId = "assigns a transaction id, which a read never needs";
    public const string ServerState = "changes the server's replication, WAL, log or statistics state";
    public const string Writes = "writes data or changes the schema";
    public const string WritesResult = "writes the result into a table, a file or variables";
    public const string RunsOrAnalyzes = "runs the statement (EXPLAIN ANALYZE) or rewrites statistics (ANALYZE)";
    public const string Maintains = "rewrites or locks tables, indexes or statistics";
    public const string Administers = "administers the server";

    /// <summary>Why a statement that starts with one of these words is no read, for the message.</summary>
    private static readonly SqlNames StatementWords = new()
    {
        { ChangesSettings, "SET", "RESET", "DISCARD", "USE", "UNSET", "PRAGMA" },
        { ControlsTransaction, "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "SAVE" },
        { KeepsSessionState, "PREPARE", "DEALLOCATE", "DECLARE", "FETCH", "MOVE", "CLOSE", "OPEN", "LISTEN", "UNLISTEN", "NOTIFY", "HANDLER" },
        { RunsSqlText, "DO", "CALL", "EXEC", "EXECUTE" },
        { TakesLocks, "LOCK", "UNLOCK" },
        { StopsSessions, "KILL", "SHUTDOWN" },
        { Maintains, "ANALYZE", "ANALYSE", "VACUUM", "CLUSTER", "REINDEX", "OPTIMIZE", "CHECKPOINT", "REFRESH", "CHECK", "REPAIR" },
        { Administers, "SYSTEM", "RECONFIGURE", "DBCC", "FLUSH", "PURGE", "BACKUP", "RESTORE", "INSTALL", "UNINSTALL", "LOAD", "ATTACH", "DETACH" },
        {
            Writes, "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "TRUNCATE", "CREATE", "ALTER", "DROP", "RENAME", "GRANT",
            "REVOKE", "DENY", "COMMENT", "COPY", "IMPORT", "EXPORT", "PUT", "REMOVE", "UNDROP", "SECURITY", "REASSIGN"
        },
    };

    /// <summary>Words a table name follows (DuckDB also reads a file named there).</summary>
    private static readonly HashSet<string> TableWords = new(StringComparer.OrdinalIgnoreCase)
    {
        "FROM", "JOIN", "DESCRIBE", "DESC", "SUMMARIZE", "SHOW", "TABLE", "PIVOT", "UNPIVOT",
    };

    /// <summary>The dialect whose tokens are read; also the gateway's statement splitter.</summary>
    public required SqlDialect Dialect { get; init; }

    /// <summary>The database's name in messages.</summary>
    public required string Database { get; init; }

    /// <summary>The words a statement may start with, in the order messages list them; none means no check (the service checks exactly).</summary>
    public IReadOnlyList<string> Leading { get; init; } = [];

    /// <summary>Keywords refused anywhere outside strings, comments and quoted names, unless qualified.</summary>
    public SqlNames Words { get; init; } = [];

    /// <summary>Words of <see cref="Words"/> that are also functions (MySQL's <c>INSERT(…)</c>): allowed when followed by '('.</summary>
    public IReadOnlySet<string> CallableWords { get; init; } = new HashSet<string>();

    /// <summary>Functions refused where they are called, as a word or a quoted name followed by '('.</summary>
    public SqlNames Functions { get; init; } = [];

    /// <summary>PostgreSQL also calls a function of one argument as a field: <c>(42).pg_advisory_lock</c>.</summary>
    public bool FieldCalls { get; init; }

    /// <summary>Names refused wherever they appear, bare or quoted (ClickHouse's uid setting).</summary>
    public SqlNames Names { get; init; } = [];

    /// <summary>DuckDB reads a file named in place of a table (<c>FROM 'data.csv'</c>): refuse that.</summary>
    public bool FilesAsTables { get; init; }

    /// <summary>Null when the statement may be sent, else the message of the 400 on <c>sql</c>: what was refused and why.</summary>
    public string? Refusal(string statement)
    {
        if (Leading.Count == 0)
        {
            return null;
        }

        var wellFormed = false;
        foreach (var reading in SqlText.Readings(statement, Dialect))
        {
            var tokens = SqlText.Tokens(statement, Dialect, reading);
            if (tokens.Exists(t => !t.Closed))
            {
                // The server does not read the text this way, or it would refuse it: a string or
                // comment that never ends. ('\' is a whole string unless backslashes escape.)
                continue;
            }

            wellFormed = true;
            if (Check(statement, tokens) is { } why)
            {
                return Said(why);
            }
        }

        return wellFormed ? null : Said("a quoted string, a quoted name or a comment is not closed");
    }

    private string Said(string why) => $"Queries are read-only, and Caravan did not send this statement to {Database}: {why}.";

    private string? Check(string sql, List<SqlToken> tokens)
    {
        var first = 0;
        while (first < tokens.Count && Is(sql, tokens[first], '('))
        {
            first++;
        }

        if (first == tokens.Count || tokens[first].Kind != SqlTokenKind.Word)
        {
            return $"it does not start with a keyword. A query starts with {LeadingText()}";
        }

        var opening = SqlText.Text(sql, tokens[first]).ToString();
        if (!Leading.Contains(opening, StringComparer.OrdinalIgnoreCase))
        {
            return $"it starts with {opening.ToUpperInvariant()}, which {StatementWords.Why(opening) ?? "is not a read"}. A query starts with {LeadingText()}";
        }

        var clauses = new Stack<string?>();
        clauses.Push(null);
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            var qualified = i > 0 && Is(sql, tokens[i - 1], '.');
            var after = i + (token.Kind == SqlTokenKind.UnicodeName && HasEscapeClause(sql, tokens, i) ? 3 : 1);
            var called = after < tokens.Count && Is(sql, tokens[after], '(');
            if (token.Kind == SqlTokenKind.Symbol)
            {
                Nest(sql, token, clauses);
                continue;
            }

            var name = NameOf(sql, tokens, i);
            if (name is null)
            {
                if (FilesAsTables && token.Kind == SqlTokenKind.Text && NamesTable(sql, tokens, i, clauses))
                {
                    return "it reads a file named in a string in place of a table, which queries may not do";
                }

                continue;
            }

            if (token.Kind == SqlTokenKind.Word)
            {
                var word = name.ToUpperInvariant();
                if (!qualified && Words.Why(name) is { } why && !(called && CallableWords.Contains(word)))
                {
                    return $"it contains {word} (outside strings and quoted names), which {why}";
                }

                if (FilesAsTables)
                {
                    Clause(word, clauses);
                }
            }
            else if (FilesAsTables && name.IndexOfAny(['.', '/', '\\', ':']) >= 0 && NamesTable(sql, tokens, i, clauses))
            {
                return "it reads a file named in a quoted name in place of a table, which queries may not do";
            }

            if (Names.Why(name) is { } named)
            {
                return $"it names {name}, {named}";
            }

            if ((called || FieldCalls && qualified) && Functions.Why(name) is { } function)
            {
                return $"it calls {name}, which {function}";
            }
        }

        return null;
    }

    private string LeadingText() => string.Join(", ", Leading.Take(Leading.Count - 1)) + (Leading.Count > 1 ? " or " : string.Empty) + Leading[^1];

    /// <summary>The name a word or quoted name stands for (a <c>U&amp;"…"</c> name decoded), or null for other tokens.</summary>
    private static string? NameOf(string sql, List<SqlToken> tokens, int index)
    {
        var token = tokens[index];
        return token.Kind switch
        {
            SqlTokenKind.Word => SqlText.Text(sql, token).ToString(),
            SqlTokenKind.Name => token.Name,
            SqlTokenKind.UnicodeName => Unescape(token.Name!, Escape(sql, tokens, index)),
            _ => null,
        };
    }

    /// <summary>The escape character of a <c>U&amp;"…"</c> name: <c>\</c>, or the one its <c>UESCAPE 'c'</c> gives.</summary>
    private static char Escape(string sql, List<SqlToken> tokens, int index) =>
        HasEscapeClause(sql, tokens, index) ? sql[tokens[index + 2].Start + 1] : '\\';

    private static bool HasEscapeClause(string sql, List<SqlToken> tokens, int index) =>
        index + 2 < tokens.Count && tokens[index + 1].Kind == SqlTokenKind.Word
        && SqlText.Text(sql, tokens[index + 1]).Equals("UESCAPE", StringComparison.OrdinalIgnoreCase)
        && tokens[index + 2] is { Kind: SqlTokenKind.Text } quoted && quoted.End - quoted.Start == 3;

    /// <summary>PostgreSQL's unicode escapes: <c>\XXXX</c>, <c>\+XXXXXX</c> and a doubled escape character.</summary>
    private static string Unescape(string text, char escape)
    {
        var result = new System.Text.StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != escape || i + 1 >= text.Length)
            {
                result.Append(text[i]);
            }
            else if (text[i + 1] == escape)
            {
                result.Append(escape);
                i++;
            }
            else if (text[i + 1] == '+' && i + 8 <= text.Length && int.TryParse(text.AsSpan(i + 2, 6), System.Globalization.NumberStyles.HexNumber, null, out var wide)
                && wide is >= 0 and <= 0x10FFFF and not (>= 0xD800 and <= 0xDFFF))
            {
                result.Append(char.ConvertFromUtf32(wide));
                i += 7;
            }
            else if (i + 5 <= text.Length && int.TryParse(text.AsSpan(i + 1, 4), System.Globalization.NumberStyles.HexNumber, null, out var code))
            {
                result.Append((char)code);
                i += 4;
            }
            else
            {
                result.Append(text[i]);
            }
        }

        return result.ToString();
    }

    private static bool Is(string sql, SqlToken token, char symbol) => token.Kind == SqlTokenKind.Symbol && sql[token.Start] == symbol;

    /// <summary>Parentheses open and close a clause scope, so a ',' is read in the clause it belongs to.</summary>
    private static void Nest(string sql, SqlToken token, Stack<string?> clauses)
    {
        if (sql[token.Start] == '(')
        {
            clauses.Push(null);
        }
        else if (sql[token.Start] == ')' && clauses.Count > 1)
        {
            clauses.Pop();
        }
    }

    /// <summary>Keeps the clause of the current scope: FROM (and the JOINs in it) until a clause that ends it.</summary>
    private static void Clause(string word, Stack<string?> clauses)
    {
        if (TableWords.Contains(word) && word != "DESC")
        {
            clauses.Pop();
            clauses.Push("FROM");
        }
        else if (word is "SELECT" or "WHERE" or "GROUP" or "HAVING" or "ORDER" or "LIMIT" or "OFFSET" or "QUALIFY" or "WINDOW"
            or "UNION" or "EXCEPT" or "INTERSECT" or "RETURNING" or "FETCH" or "VALUES")
        {
            clauses.Pop();
            clauses.Push(word);
        }
    }

    /// <summary>Whether the token stands where a table is named: right after FROM or JOIN, or after a ',' of a FROM list.</summary>
    private static bool NamesTable(string sql, List<SqlToken> tokens, int index, Stack<string?> clauses)
    {
        if (index == 0)
        {
            return false;
        }

        var before = tokens[index - 1];
        if (before.Kind == SqlTokenKind.Word)
        {
            var word = SqlText.Text(sql, before);
            return TableWords.Contains(word.ToString());
        }

        return Is(sql, before, ',') && clauses.Peek() == "FROM";
    }
}

/// <summary>
/// Names grouped by why they are refused: exact names, or prefixes ending in '*', matched whatever
/// their case. Written as a collection initializer: <c>{ why, "name", "prefix*" }</c>.
/// </summary>
public sealed class SqlNames : IEnumerable<string>
{
    private readonly Dictionary<string, string> _exact = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<(string Prefix, string Why)> _prefixes = [];

    public void Add(string why, params string[] names)
    {
        foreach (var name in names)
        {
            if (name.EndsWith('*'))
            {
                _prefixes.Add((name[..^1], why));
            }
            else
            {
                _exact[name] = why;
            }
        }
    }

    /// <summary>Why the name is refused, or null when it is not.</summary>
    public string? Why(string name)
    {
        if (_exact.TryGetValue(name, out var why))
        {
            return why;
        }

        foreach (var (prefix, reason) in _prefixes)
        {
            if (name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                return reason;
            }
        }

        return null;
    }

    public IEnumerator<string> GetEnumerator() => _exact.Keys.Concat(_prefixes.Select(p => p.Prefix + "*")).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
