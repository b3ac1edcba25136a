namespace Caravan.Api.Connectors.Files;

/// <summary>Object keys of the file store: relative paths of <c>[a-z0-9/_.-]</c> with no empty, <c>.</c> or <c>..</c> segment.</summary>
public static class FileKeys
{
    public static bool IsValid(string key) =>
        key.Length is > 0 and <= 512
        && key.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '/' or '_' or '.' or '-')
        && key.Split('/').All(segment => segment.Length > 0 && segment != "." && segment != "..");

    public static void ThrowIfInvalid(string key)
    {
        if (!IsValid(key))
        {
            throw new ArgumentException("Not a valid object key: " + key, nameof(key));
        }
    }

    /// <summary>Everything a source has in the store.</summary>
    public static string Source(long sourceId) => $"sources/{sourceId}/";
}
