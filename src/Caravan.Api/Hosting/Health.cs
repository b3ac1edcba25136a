using Caravan.Api.Data;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Caravan.Api.Hosting;

internal static class Health
{
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/healthz", () => TypedResults.Ok(new HealthBody("ok"))).ExcludeFromDescription();
        routes.MapGet("/readyz", Ready).ExcludeFromDescription();
        return routes;
    }

    // Ready means the store answers a query, not just that the process runs.
    private static async Task<Results<Ok<HealthBody>, JsonHttpResult<HealthBody>>> Ready(
        Database database, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            await connection.Command("SELECT 1 FROM sources WHERE 1 = 0").ExecuteScalarAsync(cancellationToken);
            return TypedResults.Ok(new HealthBody("ready"));
        }
        catch (Exception exception) when (exception is System.Data.Common.DbException or InvalidOperationException or TimeoutException)
        {
            loggers.CreateLogger("Caravan.Readiness").LogWarning("The store is not reachable: {Reason}", exception.GetType().Name);
            return TypedResults.Json(new HealthBody("unavailable"), ApiJson.Context.HealthBody, statusCode: StatusCodes.Status503ServiceUnavailable);
        }
    }
}
