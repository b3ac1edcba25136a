using System.Collections.Concurrent;

namespace Caravan.Api.Query;

/// <summary>At most <see cref="QueryOptions.MaxConcurrentPerSource"/> queries at once on one source, on this replica.</summary>
public sealed class QueryConcurrency(Microsoft.Extensions.Options.IOptions<QueryOptions> options)
{
    private readonly ConcurrentDictionary<long, Slots> _sources = new();

    /// <summary>A slot, or null when none freed up within the configured wait.</summary>
    public async Task<IDisposable?> EnterAsync(long sourceId, CancellationToken cancellationToken)
    {
        while (true)
        {
            var slots = _sources.GetOrAdd(sourceId, _ => new Slots(options.Value.MaxConcurrentPerSource));
            lock (slots)
            {
                if (slots.Removed)
                {
                    continue;
                }

                slots.Users++;
            }

            bool entered;
            try
            {
                entered = await slots.Semaphore.WaitAsync(Math.Max(0, options.Value.ConcurrencyWaitMilliseconds), cancellationToken);
            }
            catch
            {
                Leave(sourceId, slots, release: false);
                throw;
            }

            if (entered)
            {
                return new Slot(this, sourceId, slots);
            }

            Leave(sourceId, slots, release: false);
            return null;
        }
    }

    private void Leave(long sourceId, Slots slots, bool release)
    {
        if (release)
        {
            slots.Semaphore.Release();
        }

        lock (slots)
        {
            slots.Users--;
            if (slots.Users == 0)
            {
                // Nobody waits or runs: forget the source, so the table does not grow with every id ever queried.
                slots.Removed = true;
                _sources.TryRemove(new KeyValuePair<long, Slots>(sourceId, slots));
                slots.Semaphore.Dispose();
            }
        }
    }

    private sealed class Slots(int count)
    {
        public SemaphoreSlim Semaphore { get; } = new(Math.Max(1, count), Math.Max(1, count));

        public int Users { get; set; }

        public bool Removed { get; set; }
    }

    private sealed class Slot(QueryConcurrency owner, long sourceId, Slots slots) : IDisposable
    {
        private int _left;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _left, 1) == 0)
            {
                owner.Leave(sourceId, slots, release: true);
            }
        }
    }
}
