using System.Globalization;
using Microsoft.AspNetCore.Http.Extensions;

namespace Caravan.Api.Hosting;

/// <summary>
/// The page-number pagination of every list (DRF's, as camelAI pages): <c>page</c> from 1 (or
/// <c>last</c>), <c>page_size</c> up to <see cref="MaxPageSize"/>, and the next and previous page
/// as absolute URLs. A page that does not exist is the contract's 404 <c>Invalid page.</c>.
/// </summary>
internal static class Paging
{
    public const string PageParameter = "page";
    public const string PageSizeParameter = "page_size";
    public const string LastPage = "last";

    private const int DefaultPageSize = 50;
    private const int MaxPageSize = 1000;

    public static int ReadPageSize(HttpRequest request) =>
        int.TryParse(request.Query[PageSizeParameter], NumberStyles.None, CultureInfo.InvariantCulture, out var size) && size > 0
            ? Math.Min(size, MaxPageSize)
            : DefaultPageSize;

    /// <summary>A page number from 1, or 1 when absent; null when it is not one (DRF's "Invalid page.").</summary>
    public static long? ReadPageNumber(string value) =>
        value.Length == 0 ? 1
        : long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var page) && page >= 1 ? page
        : null;

    /// <summary>The page asked for among <paramref name="pages"/> ("last" included); null when there is no such page.</summary>
    public static long? ReadPage(HttpRequest request, long pages)
    {
        string? value = request.Query[PageParameter];
        return value == LastPage ? pages
            : ReadPageNumber(value ?? string.Empty) is { } page && page <= pages ? page
            : null;
    }

    /// <summary>How many pages <paramref name="count"/> items make; an empty list still has page 1.</summary>
    public static long PageCount(long count, int pageSize) => Math.Max(1, (count + pageSize - 1) / pageSize);

    /// <summary>The next and previous page URLs of <paramref name="page"/>, null at the ends.</summary>
    public static (string? Next, string? Previous) PageLinks(HttpRequest request, long page, long pages) =>
        (page < pages ? PageUrl(request, page + 1) : null, page > 1 ? PageUrl(request, page - 1) : null);

    // As DRF does: the current URL with only the page changed, and no page parameter for page 1.
    private static string PageUrl(HttpRequest request, long page)
    {
        var query = new QueryBuilder();
        foreach (var (key, values) in request.Query)
        {
            if (key != PageParameter)
            {
                foreach (var value in values)
                {
                    query.Add(key, value ?? string.Empty);
                }
            }
        }

        if (page > 1)
        {
            query.Add(PageParameter, page.ToString(CultureInfo.InvariantCulture));
        }

        return UriHelper.BuildAbsolute(request.Scheme, request.Host, request.PathBase, request.Path, query.ToQueryString());
    }
}
