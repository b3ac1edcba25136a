using Caravan.Api.Connectivity;

namespace Caravan.Api.Query;

/// <summary>
/// Runs one statement on one family of databases, read-only by the database's own means wherever
/// it has them. An engine reports columns and rows through <see cref="QueryRun"/>, which applies
/// the row and byte limits, and throws <see cref="QueryException"/> for failures it recognises
/// (<see cref="ConnectivityException"/> when the database cannot be reached).
/// </summary>
public interface IQueryEngine
{
    /// <summary>The connection types (SourceType.Name) this engine serves.</summary>
    IReadOnlyCollection<string> Types { get; }

    SqlDialect Dialect { get; }

    /// <summary>Why <c>uid</c> cannot be honoured for this type, or null when it is handed to the database.</summary>
    string? UidUnsupported { get; }

    Task RunAsync(QueryRun run);
}

/// <summary>One query in flight: what to run, where, within which limits, and where its rows go.</summary>
public sealed class QueryRun(
    SourceConnection connection, long sourceId, long organizationId, long version, string statement, QueryRequest request,
    QueryOptions options, IRowSink sink, SecretScrubber scrubber, CancellationToken token)
{
    private long _bytes;

    public SourceConnection Connection => connection;

    public long SourceId => sourceId;

    public long OrganizationId => organizationId;

    /// <summary>The stored version of the source's configuration: a pool made for another version is retired.</summary>
    public long Version => version;

    /// <summary>The one statement to run, without a trailing ';'.</summary>
    public string Statement => statement;

    public QueryRequest Request => request;

    public QueryOptions Options => options;

    public SecretScrubber Scrubber => scrubber;

    /// <summary>Cancelled when the client goes away or well after the time limit (engines set the database's own limit first).</summary>
    public CancellationToken Token => token;

    public bool Begun { get; private set; }

    public long RowCount { get; private set; }

    public bool Truncated { get; private set; }

    public async ValueTask BeginAsync(IReadOnlyList<QueryColumn> columns)
    {
        if (!Begun)
        {
            Begun = true;
            await sink.BeginAsync(columns, token);
        }
    }

    /// <summary>
    /// Hands one row on. False means "stop reading": the row limit was reached (this row proves
    /// there are more) or the byte cap would be passed; the result is then marked truncated.
    /// </summary>
    public async ValueTask<bool> AddAsync(IReadOnlyList<object?> row)
    {
        if (RowCount >= request.MaxRows)
        {
            Truncated = true;
            return false;
        }

        var size = 2L + row.Count;
        foreach (var value in row)
        {
            size += QueryValues.EstimateBytes(value);
        }

        if (_bytes + size > options.MaxResultBytes)
        {
            Truncated = true;
            return false;
        }

        _bytes += size;
        RowCount++;
        await sink.WriteRowAsync(row, token);
        return true;
    }

    /// <summary>Marks the result as cut short by the service itself (its own row or byte limit).</summary>
    public void MarkTruncated() => Truncated = true;

    /// <summary>A scrubbed failure of the statement, 422.</summary>
    public QueryException Failed(string code, string message, Exception? inner = null) =>
        new(new QueryFailure(QueryFailureKind.Database, code, Scrub(message)), inner);

    public QueryException Refused(string message, Exception? inner = null) => new(QueryFailure.ReadOnly(Scrub(message)), inner);

    public QueryException TimedOut(Exception? inner = null) =>
        new(new QueryFailure(QueryFailureKind.Timeout, QueryCodes.Timeout,
            $"The statement did not finish within {request.TimeoutMs} ms and was cancelled."), inner);

    /// <summary>The longest message of a failed query; engines do not shorten what a database said, this cut (after masking) does.</summary>
    public const int MessageLimit = 1000;

    /// <summary>The text of a failure as it may leave: the source's secrets masked, then cut to <see cref="MessageLimit"/>.</summary>
    public string Scrub(string message) => scrubber.Scrub(message, MessageLimit);
}
