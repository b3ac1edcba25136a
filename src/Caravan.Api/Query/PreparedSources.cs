using Caravan.Api.Connectors;
using System.Collections.Concurrent;
using Caravan.Api.Connectivity;
using Caravan.Api.Sources;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Query;

/// <summary>
/// The decrypted configuration (and its secret scrubber) of recently queried sources, so a query
/// on an unchanged source neither parses nor decrypts again. An entry is used only while the
/// stored row it was made from is the same, text for text (version, settings and secrets as
/// stored), so a change, a rotation or a deletion is seen by the very next query. The decrypted
/// values are what the source's connection pool holds anyway; like the pools, the entries are
/// bounded, and a source that is gone loses its entry.
/// </summary>
public sealed class PreparedSources(SourceConnections sources, IOptions<QueryOptions> options)
{
    private readonly ConcurrentDictionary<long, Prepared> _prepared = new();

    public Prepared For(StoredSource source)
    {
        if (_prepared.TryGetValue(source.Id, out var known) && known.Source == source)
        {
            return known;
        }

        var connection = sources.Connect(source);
        var prepared = new Prepared(source, connection, connection.Scrubber);
        if (_prepared.Count >= Math.Max(1, options.Value.MaxPools) * 2)
        {
            // Past the bound (twice the pools kept): start over rather than track use; preparing
            // again costs one decryption per source.
            _prepared.Clear();
        }

        _prepared[source.Id] = prepared;
        return prepared;
    }

    /// <summary>Forgets a source (deleted, or not the caller's): its decrypted values leave memory with the entry.</summary>
    public void Forget(long sourceId) => _prepared.TryRemove(sourceId, out _);

    /// <summary>A stored source made ready for queries.</summary>
    public sealed record Prepared(StoredSource Source, SourceConnection Connection, SecretScrubber Scrubber);
}
