using Microsoft.Extensions.Options;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// The default store: a folder of this machine (<c>Caravan__Files__Directory</c>), open to its
/// owner only. An object is written to a temporary name beside it, flushed to disk, then renamed,
/// so a crash leaves either the whole object or none.
/// </summary>
public sealed class LocalFileStore(IOptions<FilesOptions> options) : IFileStore
{
    private string Root => Path.GetFullPath(Path.Combine(options.Value.Directory, "store"));

    public Task<long> PutAsync(string key, Stream content, CancellationToken cancellationToken) =>
        LocalObjects.WriteAsync(LocalObjects.PathOf(Root, key), content, cancellationToken);

    public Task<string> LocalCopyAsync(string key, CancellationToken cancellationToken)
    {
        var path = LocalObjects.PathOf(Root, key);
        return File.Exists(path) ? Task.FromResult(path) : throw new FileNotFoundException("No stored object " + key);
    }

    public Task DeletePrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        LocalObjects.DeleteUnder(Root, prefix);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken cancellationToken) =>
        Task.FromResult(LocalObjects.Keys(Root, prefix));

    public IReadOnlyList<string> LocalCopies(string prefix) => [];

    public void DropLocalCopies(string prefix)
    {
    }
}
