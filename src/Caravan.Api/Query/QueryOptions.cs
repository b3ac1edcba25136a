namespace Caravan.Api.Query;

/// <summary>Settings of the query gateway (<c>Caravan:Query</c>), validated at start-up.</summary>
public sealed class QueryOptions
{
    public const string Section = "Caravan:Query";

    /// <summary>The limits of the contract: a request may ask for less, never for more (the row ceiling is the operator's, below).</summary>
    public const int DefaultMaxRows = 1000;
    public const int DefaultMaxRowsLimit = 100_000;

    /// <summary>The highest row ceiling an operator may set: well past any one answer a client should hold.</summary>
    public const int HighestMaxRowsLimit = 10_000_000;
    public const int DefaultTimeoutMs = 30_000;
    public const int TimeoutLimitMs = 300_000;
    public const int MaxUidLength = 256;

    /// <summary>The most rows one result may carry: larger <c>max_rows</c> are clamped to it, and <c>max_rows</c> defaults to no more than it.</summary>
    public int MaxRowsLimit { get; set; } = DefaultMaxRowsLimit;

    /// <summary>The most bytes of row data one result may carry; beyond it the result is cut and marked truncated.</summary>
    public long MaxResultBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// The most bytes of results all running queries on this replica together may hold in memory at
    /// once (<see cref="ResultMemory"/>); a query that cannot get its share in time ends truncated.
    /// </summary>
    public long MaxBufferedResultBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Queries that may run at once on one source, on this replica.</summary>
    public int MaxConcurrentPerSource { get; set; } = 4;

    /// <summary>How long a query waits for a free slot on its source before the answer is 503.</summary>
    public int ConcurrencyWaitMilliseconds { get; set; } = 2000;

    /// <summary>The most sources whose connection pools are kept open at once (least recently used go first).</summary>
    public int MaxPools { get; set; } = 100;

    /// <summary>A pool unused for this long is closed.</summary>
    public int PoolIdleSeconds { get; set; } = 300;
}
