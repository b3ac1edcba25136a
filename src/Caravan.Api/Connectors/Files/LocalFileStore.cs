using Caravan.Api.Hosting;
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

    public async Task<long> PutAsync(string key, Stream content, CancellationToken cancellationToken)
    {
        var path = PathOf(key);
        OwnerOnlyFiles.CreateFolder(Path.GetDirectoryName(path)!);
        var partial = path + ".partial-" + Guid.NewGuid().ToString("N");
        try
        {
            long written;
            await using (var file = new FileStream(partial, new FileStreamOptions
            {
                // Open to its owner only through the process's umask (OwnerOnlyFiles.RestrictUmask).
                Mode = FileMode.CreateNew, Access = FileAccess.Write, BufferSize = 0, Options = FileOptions.Asynchronous,
            }))
            {
                await content.CopyToAsync(file, 1 << 20, cancellationToken);
                written = file.Length;
                file.Flush(flushToDisk: true);
            }

            File.Move(partial, path, overwrite: true);
            return written;
        }
        catch
        {
            File.Delete(partial);
            throw;
        }
    }

    public Task<string> LocalCopyAsync(string key, CancellationToken cancellationToken)
    {
        var path = PathOf(key);
        return File.Exists(path) ? Task.FromResult(path) : throw new FileNotFoundException("No stored object " + key);
    }

    public Task DeletePrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        var path = PathOf(prefix.TrimEnd('/'));
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
        else if (File.Exists(path))
        {
            File.Delete(path);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken cancellationToken)
    {
        var root = Root;
        var under = PathOf(prefix.TrimEnd('/'));
        IReadOnlyList<string> keys = Directory.Exists(under)
            ? [.. Directory.EnumerateFiles(under, "*", SearchOption.AllDirectories)
                .Where(f => !f.Contains(".partial-", StringComparison.Ordinal))
                .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/')).Order(StringComparer.Ordinal)]
            : [];
        return Task.FromResult(keys);
    }

    private string PathOf(string key)
    {
        if (!FileKeys.IsValid(key))
        {
            throw new ArgumentException("Not a valid object key: " + key, nameof(key));
        }

        return Path.Combine(Root, key);
    }
}
