using Microsoft.Extensions.Options;

namespace Caravan.Api.Query;

/// <summary>
/// Connection pools per source, each made for one stored version of the source's configuration
/// (and the address it was checked at). A query that finds another version retires the old pool
/// at once — so a password changed with update-config, on this replica or another, is used by
/// the very next query — and a retired pool is disposed as soon as no query uses it. The number
/// of pools is bounded (least recently used first) and idle pools are closed.
/// </summary>
public sealed class QueryPools : IAsyncDisposable
{
    private readonly Dictionary<long, Entry> _entries = [];
    private readonly Lock _lock = new();
    private readonly QueryOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<QueryPools> _logger;
    private readonly ITimer _sweeper;

    public QueryPools(IOptions<QueryOptions> options, TimeProvider time, ILogger<QueryPools> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        var period = TimeSpan.FromSeconds(Math.Clamp(_options.PoolIdleSeconds / 2, 5, 60));
        _sweeper = time.CreateTimer(_ => Sweep(), null, period, period);
    }

    /// <summary>The number of open pools (for tests and diagnostics).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>
    /// The pool of a source for this configuration <paramref name="key"/>, made by
    /// <paramref name="create"/> when there is none or the one there was made for another key.
    /// Dispose the lease when the query ends.
    /// </summary>
    public Lease<T> Acquire<T>(long sourceId, long organizationId, string key, Func<T> create)
        where T : class, IAsyncDisposable
    {
        var retired = new List<Entry>();
        Lease<T> lease;
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            if (!_entries.TryGetValue(sourceId, out var entry) || entry.Key != key || entry.OrganizationId != organizationId || entry.Resource is not T)
            {
                if (entry is not null)
                {
                    retired.Add(Retire(entry));
                }

                entry = new Entry(sourceId, organizationId, key, create());
                _entries[sourceId] = entry;
            }

            entry.Leases++;
            entry.LastUsed = now;
            lease = new Lease<T>(this, entry, (T)entry.Resource);
            retired.AddRange(EvictOverflow());
        }

        DisposeAll(retired);
        return lease;
    }

    /// <summary>Retires the pool of a source (it was changed or deleted); used by the source routes.</summary>
    public void Retire(long sourceId, long? organizationId = null)
    {
        Entry? retired = null;
        lock (_lock)
        {
            if (_entries.TryGetValue(sourceId, out var entry) && (organizationId is null || entry.OrganizationId == organizationId))
            {
                retired = Retire(entry);
            }
        }

        DisposeAll(retired is null ? [] : [retired]);
    }

    public async ValueTask DisposeAsync()
    {
        await _sweeper.DisposeAsync();
        List<Entry> all;
        lock (_lock)
        {
            all = [.. _entries.Values.Select(Retire)];
        }

        foreach (var entry in all)
        {
            await DisposeNowAsync(entry);
        }
    }

    private void Release(Entry entry)
    {
        bool dispose;
        lock (_lock)
        {
            entry.Leases--;
            entry.LastUsed = _time.GetTimestamp();
            dispose = entry.Retired && entry.Leases == 0;
        }

        if (dispose)
        {
            DisposeAll([entry]);
        }
    }

    /// <summary>Marks an entry retired and removes it; the caller disposes what this returns (when unused).</summary>
    private Entry Retire(Entry entry)
    {
        entry.Retired = true;
        if (_entries.TryGetValue(entry.SourceId, out var current) && ReferenceEquals(current, entry))
        {
            _entries.Remove(entry.SourceId);
        }

        return entry;
    }

    private IEnumerable<Entry> EvictOverflow()
    {
        var evicted = new List<Entry>();
        while (_entries.Count > Math.Max(1, _options.MaxPools))
        {
            var oldest = _entries.Values.Where(e => e.Leases == 0).MinBy(e => e.LastUsed);
            if (oldest is null)
            {
                break;
            }

            evicted.Add(Retire(oldest));
        }

        return evicted;
    }

    private void Sweep()
    {
        var idle = new List<Entry>();
        lock (_lock)
        {
            var limit = TimeSpan.FromSeconds(Math.Max(1, _options.PoolIdleSeconds));
            foreach (var entry in _entries.Values.ToList())
            {
                if (entry.Leases == 0 && _time.GetElapsedTime(entry.LastUsed) > limit)
                {
                    idle.Add(Retire(entry));
                }
            }
        }

        DisposeAll(idle);
    }

    private void DisposeAll(IEnumerable<Entry> entries)
    {
        foreach (var entry in entries)
        {
            bool unused;
            lock (_lock)
            {
                unused = entry.Leases == 0 && !entry.Disposed;
                entry.Disposed |= unused;
            }

            if (unused)
            {
                _ = DisposeNowAsync(entry);
            }
        }
    }

    private async Task DisposeNowAsync(Entry entry)
    {
        try
        {
            await entry.Resource.DisposeAsync();
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            _logger.LogWarning("Closing the connection pool of source {SourceId} failed with {Exception}", entry.SourceId, exception.GetType().Name);
        }
    }

    private sealed class Entry(long sourceId, long organizationId, string key, IAsyncDisposable resource)
    {
        public long SourceId => sourceId;

        public long OrganizationId => organizationId;

        public string Key => key;

        public IAsyncDisposable Resource => resource;

        public int Leases { get; set; }

        public long LastUsed { get; set; }

        public bool Retired { get; set; }

        public bool Disposed { get; set; }
    }

    /// <summary>The use of one pool by one query.</summary>
    public sealed class Lease<T> : IDisposable
        where T : class
    {
        private readonly QueryPools _pools;
        private readonly object _entry;
        private int _released;

        internal Lease(QueryPools pools, object entry, T pool)
        {
            _pools = pools;
            _entry = entry;
            Pool = pool;
        }

        public T Pool { get; }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                _pools.Release((Entry)_entry);
            }
        }
    }
}
