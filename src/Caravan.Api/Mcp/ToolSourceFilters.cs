using Caravan.Api.Auth;
using Caravan.Api.Connectors;

namespace Caravan.Api.Mcp;

/// <summary>
/// The families' tools (<see cref="IToolSource"/>, such as MCP sources' remote tools) at <c>/mcp</c>:
/// appended to <c>tools/list</c>, and a call of a name one of them claims answered by it. The SDK
/// knows only Caravan's own tools, so a name it matched is never handed to a family.
/// </summary>
internal static class ToolSourceFilters
{
    public static void AddFilters(IMcpRequestFilterBuilder filters)
    {
        filters.AddListToolsFilter(next => async (request, cancellationToken) =>
        {
            var result = await next(request, cancellationToken);
            if (Caller(request.Services) is { } caller)
            {
                foreach (var source in request.Services!.GetServices<IToolSource>())
                {
                    result.Tools = [.. result.Tools, .. await source.ListAsync(caller, cancellationToken)];
                }
            }

            return result;
        });

        filters.AddCallToolFilter(next => async (request, cancellationToken) =>
            request.MatchedPrimitive is null && request.Params?.Name is { } name && Caller(request.Services) is { } caller
                && Claimant(request.Services!, name) is { } source
                ? await source.CallAsync(caller, name, request.Params.Arguments, cancellationToken)
                : await next(request, cancellationToken));
    }

    /// <summary>The family that answers calls of <paramref name="toolName"/>, if any.</summary>
    public static IToolSource? Claimant(IServiceProvider services, string toolName) =>
        services.GetServices<IToolSource>().FirstOrDefault(source => source.Claims(toolName));

    private static Caller? Caller(IServiceProvider? services) =>
        services?.GetService<IHttpContextAccessor>()?.HttpContext?.Features.Get<Caller>();
}
