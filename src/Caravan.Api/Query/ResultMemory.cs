using System.Diagnostics;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Query;

/// <summary>
/// The replica's budget for result buffers (<c>Caravan:Query:MaxBufferedResultBytes</c>): what all
/// running queries together may hold of their results at once — the values of the row being read,
/// and rows waiting to be written (for an MCP tool result, every row, until the query ends). Each
/// query's limits bound one result; this bounds their sum, so many sources at once cannot add up.
/// A query takes its share before it reads and gives it back once the row is written, or when it
/// ends however it ends (<see cref="QueryRun.Release"/>). A query that cannot get its share waits
/// up to <see cref="Wait"/> for others to give theirs back; then its result ends there, truncated.
/// </summary>
public sealed class ResultMemory(IOptions<QueryOptions> options)
{
    /// <summary>How long a query waits for others to give back their share before its result is cut.</summary>
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(1);

    private readonly long _capacity = options.Value.MaxBufferedResultBytes;
    private readonly Lock _gate = new();
    private long _held;
    private int _waiting;
    private TaskCompletionSource? _given;

    /// <summary>What the running queries hold now, in bytes.</summary>
    public long Held => Interlocked.Read(ref _held);

    /// <summary>Takes <paramref name="bytes"/> when they are free now.</summary>
    public bool TryTake(long bytes)
    {
        var held = Interlocked.Read(ref _held);
        while (held + bytes <= _capacity)
        {
            var seen = Interlocked.CompareExchange(ref _held, held + bytes, held);
            if (seen == held)
            {
                return true;
            }

            held = seen;
        }

        return false;
    }

    /// <summary>
    /// Takes <paramref name="bytes"/>, waiting up to <see cref="Wait"/> for other queries to give
    /// back enough; false when they did not (or never could: more than the whole budget).
    /// </summary>
    public async ValueTask<bool> TakeAsync(long bytes, CancellationToken cancellationToken)
    {
        if (TryTake(bytes))
        {
            return true;
        }

        if (bytes > _capacity)
        {
            return false;
        }

        var deadline = Stopwatch.GetTimestamp() + (long)(Wait.TotalSeconds * Stopwatch.Frequency);
        Interlocked.Increment(ref _waiting);
        try
        {
            while (true)
            {
                // Taken before trying again, so a share given back in between wakes this waiter.
                Task given;
                lock (_gate)
                {
                    given = (_given ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                }

                if (TryTake(bytes))
                {
                    return true;
                }

                var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
                if (left <= TimeSpan.Zero)
                {
                    return false;
                }

                try
                {
                    await given.WaitAsync(left, cancellationToken);
                }
                catch (TimeoutException)
                {
                    return TryTake(bytes);
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    /// <summary>Gives back <paramref name="bytes"/> taken before, and wakes the queries waiting for a share.</summary>
    public void Give(long bytes)
    {
        if (bytes <= 0)
        {
            return;
        }

        Interlocked.Add(ref _held, -bytes);
        if (Volatile.Read(ref _waiting) == 0)
        {
            return;
        }

        TaskCompletionSource? given;
        lock (_gate)
        {
            (given, _given) = (_given, null);
        }

        given?.TrySetResult();
    }
}
