namespace Caravan.Api.Connectors.Files;

/// <summary>
/// Where FILE sources keep their bytes: uploaded files (encrypted by Caravan as they arrive) and
/// the DuckDB databases they are converted to (encrypted by DuckDB). Keys are relative paths of
/// <c>[a-z0-9/_.-]</c> such as <c>sources/42/raw/7f3c….bin</c>; objects are written once and never
/// changed, so a copy of one is valid for as long as the object exists.
/// </summary>
public interface IFileStore
{
    /// <summary>
    /// Writes <paramref name="content"/> to <paramref name="key"/> as it arrives, without holding
    /// it in memory, and returns how many bytes were written. When the task completes the object is
    /// whole and durable; when it fails or is cancelled nothing is left under the key.
    /// </summary>
    Task<long> PutAsync(string key, Stream content, CancellationToken cancellationToken);

    /// <summary>
    /// A local file holding the object's bytes, for readers that need a path or random access
    /// (DuckDB, the converters): the object itself in the local store, a cached download for a
    /// remote one. Throws <see cref="FileNotFoundException"/> when there is no such object.
    /// </summary>
    Task<string> LocalCopyAsync(string key, CancellationToken cancellationToken);

    /// <summary>Deletes every object whose key starts with <paramref name="prefix"/> (and any local copies of them).</summary>
    Task DeletePrefixAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>The keys of the objects under <paramref name="prefix"/>.</summary>
    Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>
    /// The keys of this replica's local copies of remote objects under <paramref name="prefix"/>
    /// (none for a local store, whose objects are their own copies). Another replica that deletes
    /// an object removes its own copy only; the sweep drops the ones left here.
    /// </summary>
    IReadOnlyList<string> LocalCopies(string prefix);

    /// <summary>Deletes this replica's local copies under <paramref name="prefix"/>, not the objects.</summary>
    void DropLocalCopies(string prefix);
}
