using Caravan.Api.Connectivity;
using Caravan.Api.Hosting;

namespace Caravan.Api.Query.Engines;

/// <summary>The quoting and comment rules of one warehouse's SQL, as far as finding its words needs them.</summary>
public sealed record WarehouseSyntax(bool HashComments, bool SlashComments, bool DollarStrings, bool TripleQuotes)
{
    /// <summary>Snowflake: <c>--</c> and <c>//</c> comments, <c>$$…$$</c> strings.</summary>
    public static WarehouseSyntax Snowflake { get; } = new(HashComments: false, SlashComments: true, DollarStrings: true, TripleQuotes: false);

    /// <summary>Databricks (Spark SQL): <c>--</c> comments, <c>'…'</c> and <c>"…"</c> strings, backtick identifiers.</summary>
    public static WarehouseSyntax Databricks { get; } = new(HashComments: false, SlashComments: false, DollarStrings: false, TripleQuotes: false);
}

/// <summary>
/// The read-only check for services that do not report a statement's type before running it
/// (Databricks' Statement Execution API), and the first of two for Snowflake, whose statement type
/// is asked for next (<see cref="SnowflakeQueryEngine"/>): a conservative look at the words of
/// the statement, outside strings, quoted identifiers and comments. The first word must be
/// <c>SELECT</c>, <c>WITH</c>, <c>SHOW</c>, <c>DESCRIBE</c>/<c>DESC</c> or <c>EXPLAIN</c>, and no
/// word that starts a write or a procedure may appear anywhere as a bare word (a function call,
/// the word followed by '(', is allowed: <c>INSERT(…)</c> and <c>REPLACE(…)</c> are string
/// functions). Where the reading depends on the service (backslash escapes, <c>$$</c> strings),
/// every reading is tried and the statement passes only if it passes in all. False refusals are
/// the price (a column named <c>update</c> must be quoted); the read-only role is the real boundary.
/// </summary>
public static class WarehouseStatements
{
    public static readonly IReadOnlySet<string> Leading = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN",
    };

    public static readonly IReadOnlySet<string> Forbidden = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "UNDROP",
        "GRANT", "REVOKE", "CALL", "PROCEDURE", "EXECUTE", "EXEC", "COPY", "PUT", "REMOVE", "USE", "SET", "UNSET",
        "RESET", "BEGIN", "COMMIT", "ROLLBACK", "DECLARE", "LET", "REPLACE", "OPTIMIZE", "VACUUM", "REFRESH", "MSCK",
        "CACHE", "UNCACHE", "RESTORE", "ANALYZE", "LOAD", "EXPORT",
    };

    /// <summary>Null when the statement may be sent, else why it is refused (for a 400 on <c>sql</c>).</summary>
    public static string? Refusal(string statement, WarehouseSyntax syntax)
    {
        foreach (var escapes in new[] { false, true })
        {
            foreach (var dollars in syntax.DollarStrings ? new[] { true, false } : [false])
            {
                if (Check(statement, syntax, escapes, dollars) is { } refusal)
                {
                    return refusal;
                }
            }
        }

        return null;
    }

    /// <summary>The 400 for a refused statement, on <c>sql</c>.</summary>
    public static QueryException Refused(string type, string why) => new(QueryFailure.ReadOnly(
        $"Queries are read-only. Caravan only sends {type} a single SELECT, WITH, SHOW, DESCRIBE or EXPLAIN "
        + $"with no writing keyword outside strings and quoted names: {why}"));

    /// <summary>The 400 for a type where the request cannot be honoured as configured.</summary>
    public static QueryException Unsupported(string message) =>
        new(new QueryFailure(QueryFailureKind.Invalid, QueryCodes.Unsupported, message, ValidationErrors.NonField));

    private static string? Check(string sql, WarehouseSyntax syntax, bool escapes, bool dollars)
    {
        var first = true;
        var i = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            var next = i + 1 < sql.Length ? sql[i + 1] : '\0';
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '-' && next == '-' || syntax.SlashComments && c == '/' && next == '/' || syntax.HashComments && c == '#')
            {
                var end = sql.IndexOf('\n', i);
                i = end < 0 ? sql.Length : end + 1;
            }
            else if (c == '/' && next == '*')
            {
                var end = sql.IndexOf("*/", i + 2, StringComparison.Ordinal);
                if (end < 0)
                {
                    return "a comment is not closed.";
                }

                i = end + 2;
            }
            else if (dollars && c == '$' && next == '$')
            {
                var end = sql.IndexOf("$$", i + 2, StringComparison.Ordinal);
                if (end < 0)
                {
                    return "a $$ string is not closed.";
                }

                i = end + 2;
            }
            else if (c is '\'' or '"' or '`')
            {
                var end = QuotedEnd(sql, i, syntax.TripleQuotes, escapes && c != '`');
                if (end < 0)
                {
                    return "a quoted string or name is not closed.";
                }

                if (first)
                {
                    return "the statement does not start with a keyword.";
                }

                i = end;
            }
            else if (char.IsLetter(c) || c == '_')
            {
                var start = i;
                while (i < sql.Length && (char.IsLetterOrDigit(sql[i]) || sql[i] is '_' or '$'))
                {
                    i++;
                }

                var word = sql[start..i];
                if (first && !Leading.Contains(word))
                {
                    return $"it starts with {word.ToUpperInvariant()}.";
                }

                first = false;
                if (Forbidden.Contains(word) && !FollowedByParenthesis(sql, i) && !Qualified(sql, start))
                {
                    return $"it contains {word.ToUpperInvariant()}.";
                }
            }
            else
            {
                if (first)
                {
                    return "the statement does not start with a keyword.";
                }

                i++;
            }
        }

        return first ? "the text holds no statement." : null;
    }

    private static bool FollowedByParenthesis(string sql, int index)
    {
        while (index < sql.Length && char.IsWhiteSpace(sql[index]))
        {
            index++;
        }

        return index < sql.Length && sql[index] == '(';
    }

    /// <summary>A name after a '.' (<c>t.update</c>) is a column or field, not a keyword.</summary>
    private static bool Qualified(string sql, int start) => start > 0 && sql[start - 1] == '.';

    private static int QuotedEnd(string sql, int index, bool triples, bool escapes)
    {
        var quote = sql[index];
        if (triples && quote != '`' && index + 2 < sql.Length && sql[index + 1] == quote && sql[index + 2] == quote)
        {
            var close = new string(quote, 3);
            for (var j = index + 3; j <= sql.Length - 3; j++)
            {
                if (escapes && sql[j] == '\\')
                {
                    j++;
                    continue;
                }

                if (string.CompareOrdinal(sql, j, close, 0, 3) == 0)
                {
                    return j + 3;
                }
            }

            return -1;
        }

        for (var j = index + 1; j < sql.Length; j++)
        {
            if (escapes && sql[j] == '\\')
            {
                j++;
            }
            else if (sql[j] == quote)
            {
                if (j + 1 < sql.Length && sql[j + 1] == quote)
                {
                    j++;
                    continue;
                }

                return j + 1;
            }
        }

        return -1;
    }
}

/// <summary>What the REST engines share: a best-effort cancel in the service, redaction of per-query tokens, their HTTP client.</summary>
internal static class RestQuery
{
    /// <summary>How long a cancel request may take; it is sent after the answer's time limit passed.</summary>
    public static readonly TimeSpan CancelLimit = TimeSpan.FromSeconds(3);

    /// <summary>Sends the cancel request, ignoring its outcome: the statement may have ended meanwhile.</summary>
    public static async Task CancelAsync(Func<CancellationToken, Task> cancel)
    {
        using var limit = new CancellationTokenSource(CancelLimit);
        try
        {
            await cancel(limit.Token);
        }
        catch (Exception exception) when (exception is ConnectivityException or OperationCanceledException or HttpRequestException or IOException)
        {
            // Best effort: the service's own statement timeout is set too.
        }
    }

    /// <summary>A one-line text without the given values (tokens made for this query are not stored secrets the scrubber knows).</summary>
    public static string Said(string text, params string?[] secrets) =>
        Connectivity.Drivers.RestService.Redact(Connectivity.Drivers.RestService.OneLine(text), secrets);

    /// <summary>A connectivity failure with the given values removed from its message.</summary>
    public static ConnectivityException Redacted(ConnectivityException failure, params string?[] secrets) =>
        new(failure.Code, Connectivity.Drivers.RestService.Redact(failure.Message, secrets), failure.InnerException, failure.Step);

    /// <summary>An HTTP client on the network path (egress policy) that accepts compressed answers.</summary>
    public static HttpClient Client(NetworkPath network)
    {
        var handler = network.HttpHandler();
        handler.AutomaticDecompression = System.Net.DecompressionMethods.All;
        var client = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.UserAgent.ParseAdd("caravan");
        client.DefaultRequestHeaders.Accept.Add(new System.Net.Http.Headers.MediaTypeWithQualityHeaderValue("application/json"));
        return client;
    }
}
