using System.Text.Json.Serialization;

namespace Caravan.Api.Query;

/// <summary>One statement to run, checked and clamped (contract section 8).</summary>
public sealed record QueryRequest(string Sql, int MaxRows, int TimeoutMs, string? Uid)
{
    public TimeSpan Timeout => TimeSpan.FromMilliseconds(TimeoutMs);
}

/// <summary>A result column: its name and the database's own name for its type.</summary>
public sealed record QueryColumn(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("type")] string Type);

/// <summary>How a query ended when it ran to its end: cut short by the limit <paramref name="TruncatedBy"/> names (<see cref="QueryLimits"/>), or whole when it is null.</summary>
public sealed record QuerySummary(long RowCount, string? TruncatedBy, long DurationMs)
{
    public bool Truncated => TruncatedBy is not null;
}

/// <summary>The limits that can cut a result short, by the names an answer gives them in <c>truncated_by</c>.</summary>
public static class QueryLimits
{
    /// <summary>The request's <c>max_rows</c> (clamped to the operator's ceiling): there were more rows.</summary>
    public const string MaxRows = "max_rows";

    /// <summary><c>Caravan:Query:MaxResultBytes</c>: the next row, or one of its values, would not fit in one result.</summary>
    public const string MaxResultBytes = "max_result_bytes";

    /// <summary><c>Caravan:Query:MaxBufferedResultBytes</c>: the replica could not hold the next row beside every other query's in time.</summary>
    public const string MaxBufferedResultBytes = "max_buffered_result_bytes";
}

/// <summary>What kind of failure, which decides the HTTP status.</summary>
public enum QueryFailureKind
{
    /// <summary>No such source for the caller: 404.</summary>
    NotFound,

    /// <summary>The request is invalid for this source (a field error): 400.</summary>
    Invalid,

    /// <summary>The source lacks required configuration: 409.</summary>
    NotConfigured,

    /// <summary>The database refused or failed the statement (syntax, missing table, permission): 422.</summary>
    Database,

    /// <summary>The database could not be reached or logged into: 502.</summary>
    Unreachable,

    /// <summary>Too many queries on the source already: 503.</summary>
    Busy,

    /// <summary>The time limit passed; the statement was cancelled: 504.</summary>
    Timeout,

    /// <summary>The client went away; nothing is answered.</summary>
    Aborted,
}

/// <summary>A failed query: its kind, a stable code, a message without secrets, and the field it is about (for 400s).</summary>
public sealed record QueryFailure(QueryFailureKind Kind, string Code, string Message, string? Field = null)
{
    public int Status => Kind switch
    {
        QueryFailureKind.NotFound => StatusCodes.Status404NotFound,
        QueryFailureKind.Invalid => StatusCodes.Status400BadRequest,
        QueryFailureKind.NotConfigured => StatusCodes.Status409Conflict,
        QueryFailureKind.Database => StatusCodes.Status422UnprocessableEntity,
        QueryFailureKind.Unreachable => StatusCodes.Status502BadGateway,
        QueryFailureKind.Busy => StatusCodes.Status503ServiceUnavailable,
        QueryFailureKind.Timeout => StatusCodes.Status504GatewayTimeout,
        _ => 499,
    };

    public static QueryFailure ReadOnly(string message) => new(QueryFailureKind.Invalid, QueryCodes.WriteRefused, message, "sql");
}

/// <summary>The stable codes of query failures; clients may switch on them.</summary>
public static class QueryCodes
{
    public const string WriteRefused = "write_refused";
    public const string MultipleStatements = "multiple_statements";
    public const string Unsupported = "unsupported";
    public const string NotConfigured = "not_configured";
    public const string SyntaxError = "syntax_error";
    public const string UndefinedObject = "undefined_object";
    public const string InsufficientPrivilege = "insufficient_privilege";
    public const string QueryFailed = "query_failed";
    public const string Timeout = "timeout";
    public const string SourceBusy = "source_busy";
    public const string Aborted = "aborted";
}

/// <summary>A failure an engine knows; the gateway turns it into the answer.</summary>
public sealed class QueryException(QueryFailure failure, Exception? inner = null) : Exception(failure.Message, inner)
{
    public QueryFailure Failure { get; } = failure;
}

/// <summary>
/// Where a result goes, row by row, as the database sends it: an HTTP response, or an MCP tool
/// result. <see cref="BeginAsync"/> comes once before any row (also for an empty result),
/// <see cref="EndAsync"/> once after the last when the query succeeded. On failure neither end
/// is called; the caller decides what to do with what was already written.
/// </summary>
public interface IRowSink
{
    /// <summary>
    /// Whether the sink holds every row until its caller is done with the result (an MCP tool
    /// result) rather than writing each away (an HTTP response): its rows then stay counted in
    /// <see cref="ResultMemory"/> until the query ends.
    /// </summary>
    bool KeepsRows { get; }

    ValueTask BeginAsync(IReadOnlyList<QueryColumn> columns, CancellationToken cancellationToken);

    /// <summary>One row; values are null, bool, long, ulong, decimal, double, string, <see cref="RawJson"/> or a list of those.</summary>
    ValueTask WriteRowAsync(IReadOnlyList<object?> row, CancellationToken cancellationToken);

    ValueTask EndAsync(QuerySummary summary, CancellationToken cancellationToken);
}

/// <summary>A JSON document the database returned (a json column): written as JSON, not as a string.</summary>
public sealed record RawJson(string Text);
