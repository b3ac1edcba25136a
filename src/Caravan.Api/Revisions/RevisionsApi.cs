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
            .MapGet("/{id}/revisions/", List).WithName("sources_revisions_list").WithSummary("List a data source's revisions")
            .TakesSourceId("No such data source in your organization, or the page does not exist (`Invalid page.`).")
            .TakesPage()
            .Answers(StatusCodes.Status200OK, "A page of the data source's revisions, newest first.", RevisionsOpenApi.PaginatedRevisionList);
        return routes;
    }

    /// <summary>Paginated exactly like the list of sources; a source the caller cannot see has no history either.</summary>
    public static async Task<IResult> List(string id, HttpRequest request, Database database, CancellationToken cancellationToken)
    {
        if (RouteIds.Parse(id) is not { } sourceId)
        {
            return ApiResults.NotFound();
        }

        var caller = request.HttpContext.Caller();
        await using var connection = await database.OpenAsync(cancellationToken);
        if (!await SourceRows.ExistsAsync(connection, caller.OrganizationId, sourceId, cancellationToken))
        {
            return ApiResults.NotFound();
        }

        var pageSize = Paging.ReadPageSize(request);
        var count = await SourceRevisions.CountAsync(connection, caller.OrganizationId, sourceId, cancellationToken);
        var pages = Paging.PageCount(count, pageSize);
        if (Paging.ReadPage(request, pages) is not { } page)
        {
            return ApiResults.InvalidPage();
        }

        var results = await SourceRevisions.PageAsync(connection, caller.OrganizationId, sourceId, (page - 1) * pageSize, pageSize, cancellationToken);
        var links = Paging.PageLinks(request, page, pages);
        return TypedResults.Json(
            new RevisionPage(
                count,
                links.Next,
                links.Previous,
                results),
            ApiJson.Context.RevisionPage);
    }
}
