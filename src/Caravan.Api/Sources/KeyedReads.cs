using System.Data.Common;
using Caravan.Api.Auth;
using Caravan.Api.Data;

namespace Caravan.Api.Sources;

/// <summary>
/// The key check and the read of one source in one store query, for the routes that check their
/// key in their own query (GET a source, query). On SQLite each request runs its own query
/// (in-process: microseconds). On PostgreSQL the round trip is the cost, so requests that arrive
/// while such a query is on its way wait for the next one, which answers all of them in one
/// statement over arrays of (key hash, source id): under load one round trip serves several
/// requests. Every check still starts after its request arrived, so a key revoked before then
/// is refused, as on every other route. A token takes the same path, keyed by the id of the key
/// that minted it (its own batches), so it costs the store no more than a key; a source outside
/// the token's list is looked up as id 0, which no source has: the key is still checked, the
/// source is not found.
/// </summary>
public sealed class KeyedReads
{
    private readonly Database _database;
    private readonly KeyedBatches<(ConnectionResponse Connection, string ETag)>? _summaries;
    private readonly KeyedBatches<StoredSource>? _stored;
    private readonly KeyedBatches<(ConnectionResponse Connection, string ETag)>? _tokenSummaries;
    private readonly KeyedBatches<StoredSource>? _tokenStored;

    public KeyedReads(Database database)
    {
        _database = database;
        if (database.Provider == StorageProvider.Postgres)
        {
            _summaries = new KeyedBatches<(ConnectionResponse, string)>(database, SourceRows.SummaryColumns, SourceRows.ReadSummary, byMintingKey: false);
            _stored = new KeyedBatches<StoredSource>(database, SourceRows.StoredColumns, SourceRows.ReadStored, byMintingKey: false);
            _tokenSummaries = new KeyedBatches<(ConnectionResponse, string)>(database, SourceRows.SummaryColumns, SourceRows.ReadSummary, byMintingKey: true);
            _tokenStored = new KeyedBatches<StoredSource>(database, SourceRows.StoredColumns, SourceRows.ReadStored, byMintingKey: true);
        }
    }

    /// <summary>The caller of an active key and the Connection object of its organization's source with its ETag (no settings or secrets read).</summary>
    public async Task<(Caller? Caller, (ConnectionResponse Connection, string ETag)? Source)> FindSummaryAsync(
        PresentedKey presented, long id, CancellationToken cancellationToken)
    {
        id = presented.Visible(id);
        if ((presented.Token is null ? _summaries : _tokenSummaries) is { } batches)
        {
            var (caller, found, summary) = await batches.FindAsync(presented, id, cancellationToken);
            return (caller, found ? summary : null);
        }

        await using var lease = await _database.LeaseReadAsync(cancellationToken);
        return await SourceRows.FindSummaryForKeyAsync(lease, presented, id, cancellationToken);
    }

    /// <summary>The caller of an active key and its organization's source as stored (settings and secrets as their JSON text).</summary>
    public async Task<(Caller? Caller, StoredSource? Source)> FindStoredAsync(PresentedKey presented, long id, CancellationToken cancellationToken)
    {
        id = presented.Visible(id);
        if ((presented.Token is null ? _stored : _tokenStored) is { } batches)
        {
            var (caller, _, source) = await batches.FindAsync(presented, id, cancellationToken);
            return (caller, source);
        }

        await using var lease = await _database.LeaseReadAsync(cancellationToken);
        return await SourceRows.FindStoredForKeyAsync(lease, presented, id, cancellationToken);
    }
}

/// <summary>
/// One query at a time for a set of (key hash, source id) lookups — (minting key id, source id)
/// with <paramref name="byMintingKey"/>, for tokens: a request that finds a query on its way waits
/// for the next, which takes every request waiting by then (at most <see cref="MostPerQuery"/>).
/// Nothing waits for company: with none on its way, a request's query starts at once.
/// </summary>
internal sealed class KeyedBatches<T>(Database database, string sourceColumns, Func<DbDataReader, int, T> read, bool byMintingKey)
{
    private const int MostPerQuery = 256;

    private readonly string _sql = $"""
        SELECT q.n, {ApiKeys.CallerColumns}, {sourceColumns}
        FROM unnest(@keys::{(byMintingKey ? "text" : "bytea")}[], @ids::bigint[]) WITH ORDINALITY AS q(credential, id, n)
        CROSS JOIN {SourceRows.KeysOrganizationAndSource("q.id")}
        WHERE {PresentedKey.Condition(byMintingKey, "q.credential")} AND k.revoked_at IS NULL
        """;

    private readonly Lock _lock = new();
    private List<Lookup> _waiting = [];
    private bool _running;

    public async Task<(Caller? Caller, bool Found, T? Source)> FindAsync(PresentedKey presented, long id, CancellationToken cancellationToken)
    {
        var lookup = new Lookup(presented, id);
        bool start;
        lock (_lock)
        {
            _waiting.Add(lookup);
            start = !_running;
            _running = true;
        }

        if (start)
        {
            _ = DrainAsync();
        }

        return await lookup.Answer.Task.WaitAsync(cancellationToken);
    }

    private async Task DrainAsync()
    {
        while (true)
        {
            List<Lookup> batch;
            lock (_lock)
            {
                if (_waiting.Count == 0)
                {
                    _running = false;
                    return;
                }

                if (_waiting.Count <= MostPerQuery)
                {
                    (batch, _waiting) = (_waiting, []);
                }
                else
                {
                    batch = _waiting.GetRange(0, MostPerQuery);
                    _waiting.RemoveRange(0, MostPerQuery);
                }
            }

            try
            {
                await AnswerAsync(batch);
            }
            catch (Exception exception)
            {
                // The store failed: every request of the query fails as its own query would have.
                foreach (var lookup in batch)
                {
                    lookup.Answer.TrySetException(exception);
                }
            }
        }
    }

    private async Task AnswerAsync(List<Lookup> batch)
    {
        object keys = byMintingKey ? batch.Select(l => l.Presented.Token!.KeyId).ToArray() : batch.Select(l => l.Presented.Hash!).ToArray();
        var ids = batch.Select(l => l.Id).ToArray();

        // Shared by every request of the batch, so none of theirs can cancel it; each stops waiting on its own.
        await using (var lease = await database.LeaseReadAsync(CancellationToken.None))
        await using (var reader = await lease.Command(_sql).With("@keys", keys).With("@ids", ids).ExecuteReaderAsync(CancellationToken.None))
        {
            while (await reader.ReadAsync(CancellationToken.None))
            {
                var lookup = batch[checked((int)reader.GetInt64(0) - 1)];
                if (lookup.Presented.ReadCaller(reader, first: 1) is not { } caller)
                {
                    continue;
                }

                var sourceFirst = 1 + ApiKeys.CallerColumnCount;
                lookup.Answer.TrySetResult(await reader.IsDBNullAsync(sourceFirst, CancellationToken.None)
                    ? (caller, false, default)
                    : (caller, true, read(reader, sourceFirst)));
            }
        }

        foreach (var lookup in batch)
        {
            // No row: the key is unknown or revoked.
            lookup.Answer.TrySetResult((null, false, default));
        }
    }

    private sealed class Lookup(PresentedKey presented, long id)
    {
        public PresentedKey Presented => presented;

        public long Id => id;

        /// <summary>Completed off the batch's thread, so no request's work runs inside the batch loop.</summary>
        public TaskCompletionSource<(Caller?, bool, T?)> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
