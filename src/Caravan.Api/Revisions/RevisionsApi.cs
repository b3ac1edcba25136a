using Caravan.Api.Auth;
using Caravan.Api.Data;
using Caravan.Api.Hosting;
using Caravan.Api.Sources;

namespace Caravan.Api.Revisions;

/// <summary><c>GET /api/v1/sources/{id}/revisions/</c>: a source's history, newest first (contract section 8).</summary>
public static class RevisionsApi
{
    public static IServiceCollection AddRevisions(this IServiceCollection services) => services.AddSingleton<AuditLog>();

    public static IEndpointRouteBuilder MapRevisions(this IEndpointRouteBuilder routes)
    {
        routes.MapGroup("/api/v1/sources").RequireApiKey().WithTags("sources")
            .MapGet("/{id}/revisions/", List).WithName("sources_revisions_list").WithSummary("List a data source's revisions");
        return routes;
    }

    /// <summary>Paginated exactly like the list of sources; a source the caller cannot see has no history either.</summary>
    public static async Task<IResult> List(string id, HttpRequest request, Database database, CancellationToken cancellationToken)
    {
        if (SourcesApi.ParseId(id) is not { } sourceId)
        {
            return ApiResults.NotFound();
        }

        var caller = request.HttpContext.Caller();
        await using var connection = await database.OpenAsync(cancellationToken);
        if (!await SourceRows.ExistsAsync(connection, caller.OrganizationId, sourceId, cancellationToken))
        {
            return ApiResults.NotFound();
        }

        var pageSize = SourcesApi.ReadPageSize(request.Query["page_size"]);
        var count = await SourceRevisions.CountAsync(connection, caller.OrganizationId, sourceId, cancellationToken);
        var pages = SourcesApi.PageCount(count, pageSize);
        if (SourcesApi.ReadPage(request.Query["page"], pages) is not { } page)
        {
            return ApiResults.InvalidPage();
        }

        var results = await SourceRevisions.PageAsync(connection, caller.OrganizationId, sourceId, (page - 1) * pageSize, pageSize, cancellationToken);
        var links = SourcesApi.PageLinks(request, page, pages);
        return TypedResults.Json(
            new RevisionPage(
                count,
                links.Next,
                links.Previous,
                results),
            ApiJson.Context.RevisionPage);
    }
}
