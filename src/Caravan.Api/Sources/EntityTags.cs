using Microsoft.Net.Http.Headers;

namespace Caravan.Api.Sources;

/// <summary>
/// Strong entity tags for optimistic concurrency: a source's tag changes on every write of it, and
/// a write carrying <c>If-Match</c> with another tag is refused with 412 and changes nothing.
/// </summary>
public static class EntityTags
{
    public static string For(SourceRow row) => For(row.Id, row.Version);

    public static string For(long id, long version) => $"\"{id}-{version}\"";

    /// <summary>True when there is no <c>If-Match</c>, or it names the current tag (strong comparison) or <c>*</c>.</summary>
    public static bool Satisfies(string? ifMatch, string current)
    {
        if (ifMatch is null)
        {
            return true;
        }

        if (!EntityTagHeaderValue.TryParseList([ifMatch], out var tags))
        {
            return false;
        }

        return tags.Any(tag => tag.Equals(EntityTagHeaderValue.Any) || (!tag.IsWeak && tag.Tag.Equals(current, StringComparison.Ordinal)));
    }

    public static string? IfMatch(HttpRequest request) =>
        request.Headers.IfMatch.Count == 0 ? null : string.Join(", ", request.Headers.IfMatch.Where(v => v is not null));
}
