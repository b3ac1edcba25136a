using Caravan.Api.Connectivity;
using Caravan.Api.Connectors;

namespace Caravan.Api.Query;

/// <summary>
/// One query in flight: what to run, where, within which limits, and where its rows go. It counts
/// what the result holds against the result's own byte cap and the replica's
/// <see cref="ResultMemory"/>: an engine asks room for a value before it reads it
/// (<see cref="HoldAsync"/>), hands each row on (<see cref="AddAsync"/>), and the gateway gives
/// back what is left when the query ends (<see cref="Release"/>).
/// </summary>
public sealed class QueryRun(
    SourceConnection connection, long sourceId, long organizationId, long version, string statement, QueryRequest request,
    QueryOptions options, IRowSink sink, ResultMemory memory, SecretScrubber scrubber, CancellationToken token)
{
    // The result's bytes so far (the rows handed on), what the row being read holds, and what this
    // query holds of the replica's budget (the row being read, and kept rows when the sink keeps them).
    // An engine that cannot be interrupted (DuckDB) may still be reading after the query ended, on
    // another thread: what it takes then is given back at once (_held and _released are shared).
    private long _bytes;
    private long _reading;
    private long _held;
    private bool _released;

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

    /// <summary>The limit that cut the result short (<see cref="QueryLimits"/>), or null while it is whole.</summary>
    public string? TruncatedBy { get; private set; }

    public bool Truncated => TruncatedBy is not null;

    public async ValueTask BeginAsync(IReadOnlyList<QueryColumn> columns)
    {
        if (!Begun)
        {
            Begun = true;
            await sink.BeginAsync(columns, token);
        }
    }

    /// <summary>
    /// Asks room for <paramref name="bytes"/> more of the row being read, before reading them: a
    /// value whose size the database tells first, or the next part of a long value. False means
    /// "stop reading": no row may follow (max_rows), the result cannot hold them (the byte cap) or
    /// the replica cannot buffer them now (<see cref="ResultMemory"/>); the result then ends before
    /// this row, marked truncated by that limit.
    /// </summary>
    public async ValueTask<bool> HoldAsync(long bytes)
    {
        if (RowCount >= request.MaxRows)
        {
            // This row proves there are more: it need not be read at all.
            return Cut(QueryLimits.MaxRows);
        }

        if (bytes <= 0)
        {
            return true;
        }

        if (_bytes + _reading + bytes > options.MaxResultBytes)
        {
            return Cut(QueryLimits.MaxResultBytes);
        }

        if (!await TakeAsync(bytes))
        {
            return false;
        }

        _reading += bytes;
        return true;
    }

    /// <summary>
    /// Hands one row on. False means "stop reading": the row limit was reached (this row proves
    /// there are more), the byte cap would be passed, or the replica cannot hold the row now; the
    /// result is then marked truncated by that limit.
    /// </summary>
    public async ValueTask<bool> AddAsync(IReadOnlyList<object?> row)
    {
        if (RowCount >= request.MaxRows)
        {
            return Cut(QueryLimits.MaxRows);
        }

        var size = 2L + row.Count;
        foreach (var value in row)
        {
            size += QueryValues.EstimateBytes(value);
        }

        if (_bytes + size > options.MaxResultBytes)
        {
            return Cut(QueryLimits.MaxResultBytes);
        }

        // What was held while the row was read becomes the row's size.
        if (size > _reading && !await TakeAsync(size - _reading))
        {
            return false;
        }

        Give(_reading - size);
        _reading = 0;
        _bytes += size;
        RowCount++;
        await sink.WriteRowAsync(row, token);
        if (!sink.KeepsRows)
        {
            Give(size);
        }

        return true;
    }

    /// <summary>Marks the result as cut short by <paramref name="limit"/> (<see cref="QueryLimits"/>) where the database applied it; the first limit to cut is the one named.</summary>
    public void MarkTruncated(string limit) => TruncatedBy ??= limit;

    /// <summary>Gives back all this query holds of the replica's budget; the gateway calls it when the query ended, however it ended.</summary>
    public void Release()
    {
        Volatile.Write(ref _released, true);
        memory.Give(Interlocked.Exchange(ref _held, 0));
    }

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

    private bool Cut(string limit)
    {
        MarkTruncated(limit);
        return false;
    }

    private async ValueTask<bool> TakeAsync(long bytes)
    {
        if (!memory.TryTake(bytes) && !await memory.TakeAsync(bytes, token))
        {
            return Cut(QueryLimits.MaxBufferedResultBytes);
        }

        Interlocked.Add(ref _held, bytes);
        if (!Volatile.Read(ref _released))
        {
            return true;
        }

        memory.Give(Interlocked.Exchange(ref _held, 0));
        return false;
    }

    private void Give(long bytes)
    {
        var held = Interlocked.Read(ref _held);
        while (bytes > 0 && held > 0)
        {
            var given = Math.Min(bytes, held);
            var seen = Interlocked.CompareExchange(ref _held, held - given, held);
            if (seen == held)
            {
                memory.Give(given);
                return;
            }

            held = seen;
        }
    }
}
