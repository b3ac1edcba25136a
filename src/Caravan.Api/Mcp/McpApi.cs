using System.Reflection;
using Caravan.Api.Hosting;
using ModelContextProtocol.Protocol;

namespace Caravan.Api.Mcp;

/// <summary>
/// The Model Context Protocol server at <c>/mcp</c> (contract section 8): Streamable HTTP,
/// stateless, so any replica answers any request; every request goes through <see cref="McpGate"/>
/// (API key, body limit, rate limits) before the SDK sees it.
/// </summary>
public static class McpApi
{
    public const string Path = "/mcp";

    /// <summary>The log category of the MCP SDK.</summary>
    public const string LogCategory = "ModelContextProtocol";

    public static IServiceCollection AddMcp(this IServiceCollection services)
    {
        services.AddHttpContextAccessor();

        // The SDK logs whole messages at Debug and Trace: SQL, uid values and result rows. Its
        // categories stay at Information, whatever the configuration says (see LogFloors).
        services.AddLogging(logging => logging.AddFloor(LogCategory, LogLevel.Information));
        services.AddMcpServer(options =>
            {
                options.ServerInfo = new Implementation
                {
                    Name = "caravan",
                    Title = "Caravan data sources",
                    Version = typeof(McpApi).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "1.0.0",
                };
                options.ServerInstructions = CaravanTools.Instructions;
            })
            .WithHttpTransport(transport => transport.Stateless = true)
            .WithTools<CaravanTools>()
            .WithRequestFilters(Tokens.TokenTools.AddFilters)
            .WithRequestFilters(ToolSourceFilters.AddFilters);
        return services;
    }

    public static IEndpointRouteBuilder MapMcpServer(this IEndpointRouteBuilder routes)
    {
        // The SDK maps plain request delegates, which endpoint filters do not reach: wrap them instead.
        routes.MapMcp(Path).Add(endpoint =>
        {
            var inner = endpoint.RequestDelegate ?? throw new InvalidOperationException("The MCP endpoint has no request delegate.");
            endpoint.RequestDelegate = context => McpGate.InvokeAsync(context, inner);

            // Open to tokens; each tool says which scope it needs (Tokens.TokenTools).
            endpoint.Metadata.Add(new Tokens.AllowTokensAttribute(Tokens.TokenScope.Read));
        });
        return routes;
    }
}
