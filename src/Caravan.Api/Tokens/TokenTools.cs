using System.Text.Json;
using System.Text.Json.Nodes;
using Caravan.Api.Auth;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Caravan.Api.Tokens;

/// <summary>
/// What a token may do at <c>/mcp</c>, tool by tool, as on the routes: a tool is open to a token
/// only if its method carries <see cref="AllowTokensAttribute"/> of the token's scope. Such a
/// token does not see the other tools in <c>tools/list</c>, and calling one answers an error
/// result that changes nothing. Which sources a tool sees is the data layer's business (a token's
/// caller finds only its sources).
/// </summary>
internal static class TokenTools
{
    public static void AddFilters(IMcpRequestFilterBuilder filters)
    {
        filters.AddListToolsFilter(next => async (request, cancellationToken) =>
        {
            var result = await next(request, cancellationToken);
            if (Grant(request.Services) is { } grant && request.Server.ServerOptions.ToolCollection is { } tools)
            {
                var closed = tools.Where(t => !Admits(t, grant)).Select(t => t.ProtocolTool.Name).ToHashSet(StringComparer.Ordinal);
                result.Tools = [.. result.Tools.Where(t => !closed.Contains(t.Name))];
            }

            return result;
        });

        filters.AddCallToolFilter(next => async (request, cancellationToken) =>
            Grant(request.Services) is { } grant && request.MatchedPrimitive is McpServerTool tool && !Admits(tool, grant)
                ? Refusal(tool)
                : await next(request, cancellationToken));
    }

    private static TokenGrant? Grant(IServiceProvider? services) =>
        services?.GetService<IHttpContextAccessor>()?.HttpContext?.Features.Get<Caller>()?.Token;

    private static bool Admits(McpServerTool tool, TokenGrant grant) =>
        AllowTokensAttribute.Admits(tool.Metadata.OfType<AllowTokensAttribute>().FirstOrDefault(), grant);

    private static CallToolResult Refusal(McpServerTool tool)
    {
        var needs = tool.Metadata.OfType<AllowTokensAttribute>().FirstOrDefault() is { } access
            ? $"needs a token with scope \"{TokenClaims.Name(access.Scope)}\" or an API key"
            : "needs an API key";
        var message = $"{TokenAuthentication.NotAllowed} {tool.ProtocolTool.Name} {needs}; nothing was run.";
        var error = new JsonObject { ["error"] = new JsonObject { ["code"] = "forbidden", ["detail"] = message } };
        using var document = JsonDocument.Parse(error.ToJsonString());
        return new CallToolResult
        {
            IsError = true,
            Content = [new TextContentBlock { Text = message }],
            StructuredContent = document.RootElement.Clone(),
        };
    }
}
