using System.Data.Common;
using System.Threading.Channels;

namespace Caravan.Api.Data;

/// <summary>What a unit of write work decided: its answer, and whether what it wrote is kept.</summary>
public readonly record struct WriteResult<T>(T Value, bool Keep);

public static class WriteResult
{
    /// <summary>The work wrote, and its writes commit with its batch.</summary>
    public static WriteResult<T> Kept<T>(T value) => new(value, true);

    /// <summary>The work answers without changing anything: whatever it did is undone.</summary>
    public static WriteResult<T> Discarded<T>(T value) => new(value, false);
}

/// <summary>
/// Group commit for the SQLite store. A durable SQLite commit is one fsync of the WAL, about 1 ms
/// here, and it was almost all of a PATCH (docs/performance.md): one transaction per request
/// capped the store at one write per fsync. Write requests queue here instead, and one committer
/// runs everything queued in one transaction, each request's work in a savepoint of its own, and
/// commits once. The queue is the order: a request's work sees every write queued before it (two
/// updates of one source apply in turn, If-Match is checked against the first's result), and work
/// that fails or decides to write nothing rolls back its savepoint alone. Every request of a
/// batch is answered only after the commit that holds it (a 200 means on disk); a commit that
/// fails fails all of them. With nothing else queued a batch is one request: no added wait.
/// </summary>
internal sealed class GroupCommit : IAsyncDisposable
{
    // Enough to amortize the fsync, small enough that one batch does not hold the lock for long.
    private const int MaxBatch = 256;

    private readonly Channel<Work> _queue = Channel.CreateUnbounded<Work>();
    private readonly Func<CancellationToken, Task<SqliteSession>> _open;
    private readonly Func<DbConnection, CancellationToken, Task<DbTransaction>> _begin;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _committer;

    // The committer's own connection, kept open with its statements compiled (a new command would
    // compile its SQL again, which was most of SQLite's share of a PATCH); only the committer uses it.
    private SqliteSession? _session;

    // Test hooks (internal, off unless a test sets them): hold the committer until so many works
    // are queued, so that they land in one batch; fail the next commit.
    private int _holdUntil;
    private TaskCompletionSource? _held;
    private int _failNextCommit;
    private long _batches;

    public GroupCommit(Func<CancellationToken, Task<SqliteSession>> open, Func<DbConnection, CancellationToken, Task<DbTransaction>> begin)
    {
        _open = open;
        _begin = begin;
        _committer = Task.Run(CommitLoopAsync);
    }

    /// <summary>
    /// Runs <paramref name="work"/> in the next batch's transaction and returns its answer once the
    /// batch committed (or its own failure, or the commit's). The work must neither commit nor roll
    /// back, and gets no cancellation: it runs beside others' work on the same connection.
    /// </summary>
    public async Task<T> RunAsync<T>(Func<DbConnection, DbTransaction, Task<WriteResult<T>>> work, CancellationToken cancellationToken)
    {
        var item = new Work<T>(work, cancellationToken);
        ObjectDisposedException.ThrowIf(!_queue.Writer.TryWrite(item), this);

        if (Volatile.Read(ref _holdUntil) is > 0 and var until && _queue.Reader.Count >= until)
        {
            Volatile.Read(ref _held)?.TrySetResult();
        }

        return await item.Answered.Task;
    }

    /// <summary>Test hook: the committer waits until <paramref name="count"/> works are queued, then takes them as one batch.</summary>
    internal void HoldUntilQueued(int count)
    {
        Volatile.Write(ref _held, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        Volatile.Write(ref _holdUntil, count);
        if (_queue.Reader.Count >= count)
        {
            _held!.TrySetResult();
        }
    }

    /// <summary>How many works wait for the committer (tests use it to queue requests in a known order).</summary>
    internal int Queued => _queue.Reader.Count;

    /// <summary>How many batches were taken so far, committed or not (tests use it to see requests share one).</summary>
    internal long Batches => Interlocked.Read(ref _batches);

    /// <summary>Test hook: the next batch fails at its commit, as a full disk would.</summary>
    internal void FailNextCommit() => Volatile.Write(ref _failNextCommit, 1);

    private async Task CommitLoopAsync()
    {
        var batch = new List<Work>(MaxBatch);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(_stopping.Token))
            {
                if (Volatile.Read(ref _held) is { } held)
                {
                    await held.Task.WaitAsync(_stopping.Token);
                    Volatile.Write(ref _holdUntil, 0);
                    Volatile.Write(ref _held, null);
                }

                while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var work))
                {
                    batch.Add(work);
                }

                Interlocked.Increment(ref _batches);
                await CommitAsync(batch);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }

        // Stopping: nothing queued runs any more; its requests fail rather than wait for ever.
        foreach (var work in batch)
        {
            work.Fail(new ObjectDisposedException(nameof(GroupCommit)));
        }

        while (_queue.Reader.TryRead(out var work))
        {
            work.Fail(new ObjectDisposedException(nameof(GroupCommit)));
        }
    }

    private async Task CommitAsync(List<Work> batch)
    {
        try
        {
            _session ??= await _open(CancellationToken.None);
            var connection = _session.Connection;
            await using var transaction = await _begin(connection, CancellationToken.None);
            foreach (var work in batch)
            {
                if (work.IsCancelled)
                {
                    work.Fail(new OperationCanceledException());
                    continue;
                }

                await connection.Command("SAVEPOINT work", transaction).ExecuteNonQueryAsync();
                bool keep;
                try
                {
                    keep = await work.RunAsync(connection, transaction);
                }
                catch (Exception exception)
                {
                    // A failure of its own fails this request only; the rest of the batch goes on.
                    work.Fail(exception);
                    keep = false;
                }

                await connection.Command(keep ? "RELEASE work" : "ROLLBACK TO work; RELEASE work", transaction).ExecuteNonQueryAsync();
            }

            if (Interlocked.Exchange(ref _failNextCommit, 0) == 1)
            {
                throw new IOException("Injected commit failure (test hook).");
            }

            await transaction.CommitAsync();
        }
        catch (Exception exception)
        {
            // Nothing of the batch is stored: every request of it fails (its transaction rolled back
            // when disposed). The next batch starts on a new connection, whatever state this one is in.
            CloseSession();
            foreach (var work in batch)
            {
                work.Fail(exception);
            }

            return;
        }

        if (_session.Uncached > SqliteSession.MaxUncached)
        {
            CloseSession();
        }

        foreach (var work in batch)
        {
            work.Resolve();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stopping.CancelAsync();
        await _committer;
        CloseSession();
        _stopping.Dispose();
    }

    private void CloseSession()
    {
        _session?.Dispose();
        _session = null;
    }

    private abstract class Work
    {
        public abstract bool IsCancelled { get; }

        public abstract Task<bool> RunAsync(DbConnection connection, DbTransaction transaction);

        public abstract void Resolve();

        public abstract void Fail(Exception exception);
    }

    private sealed class Work<T>(Func<DbConnection, DbTransaction, Task<WriteResult<T>>> work, CancellationToken cancellationToken) : Work
    {
        private T? _value;

        public TaskCompletionSource<T> Answered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override bool IsCancelled => cancellationToken.IsCancellationRequested;

        public override async Task<bool> RunAsync(DbConnection connection, DbTransaction transaction)
        {
            var result = await work(connection, transaction);
            _value = result.Value;
            return result.Keep;
        }

        public override void Resolve() => Answered.TrySetResult(_value!);

        public override void Fail(Exception exception)
        {
            if (exception is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                Answered.TrySetCanceled(cancellationToken);
            }
            else
            {
                Answered.TrySetException(exception);
            }
        }
    }
}
