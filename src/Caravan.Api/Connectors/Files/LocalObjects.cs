using Caravan.Api.Hosting;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// A folder laid out like the store's keys, as the local store keeps its objects and the S3 store
/// its downloaded copies: each object is a file at its key's path, written whole or not at all.
/// </summary>
internal static class LocalObjects
{
    /// <summary>Marks a file still being written; it is never an object.</summary>
    public const string PartialMarker = ".partial-";

    /// <summary>Where <paramref name="key"/> lives under <paramref name="root"/>; an invalid key is refused.</summary>
    public static string PathOf(string root, string key)
    {
        FileKeys.ThrowIfInvalid(key);
        return Path.Combine(root, key);
    }

    /// <summary>
    /// Writes <paramref name="content"/> to a temporary name beside <paramref name="path"/>, flushes it
    /// to disk, then renames it, so a crash or a failure leaves either the whole file or none.
    /// </summary>
    public static async Task<long> WriteAsync(string path, Stream content, CancellationToken cancellationToken)
    {
        OwnerOnlyFiles.CreateFolder(Path.GetDirectoryName(path)!);
        var partial = path + PartialMarker + Guid.NewGuid().ToString("N");
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

    /// <summary>The keys of the whole files under <paramref name="prefix"/> (a folder of keys), in order.</summary>
    public static IReadOnlyList<string> Keys(string root, string prefix)
    {
        var under = PathOf(root, prefix.TrimEnd('/'));
        return Directory.Exists(under)
            ? [.. Directory.EnumerateFiles(under, "*", SearchOption.AllDirectories)
                .Where(f => !f.Contains(PartialMarker, StringComparison.Ordinal))
                .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/')).Order(StringComparer.Ordinal)]
            : [];
    }

    /// <summary>Deletes the files under <paramref name="prefix"/> (a folder of keys, or one key).</summary>
    public static void DeleteUnder(string root, string prefix)
    {
        var path = PathOf(root, prefix.TrimEnd('/'));
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
        else if (File.Exists(path))
        {
            File.Delete(path);
        }
    }
}
