using System.Globalization;

namespace Caravan.Api.Tests.Infrastructure;

/// <summary>The paths of one source's routes (contract sections 4 and 8).</summary>
public static class SourceRoutes
{
    /// <summary>The source itself: <c>/api/v1/sources/{id}/</c>.</summary>
    public static string Url(long id) => string.Create(CultureInfo.InvariantCulture, $"/api/v1/sources/{id}/");

    /// <summary>One of its routes: <c>/api/v1/sources/{id}/{route}/</c> (test, schemas, update-config, query, revisions).</summary>
    public static string Url(long id, string route) => string.Create(CultureInfo.InvariantCulture, $"/api/v1/sources/{id}/{route}/");
}
