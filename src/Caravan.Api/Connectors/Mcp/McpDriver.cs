using System.Globalization;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors.Mcp;

/// <summary>
/// Tests an MCP source (<c>resolve</c>, <c>egress</c>, <c>connect</c>, <c>tls</c>, then the
/// protocol's <c>initialize</c> and <c>tools/list</c>) and lists its tools for discovery, each with
/// a session of its own that ends with it: a test proves what a new session would meet.
/// </summary>
public sealed class McpDriver(NetworkPath network, McpConnector connector) : IDriver
{
    public const string Initialize = "initialize";
    public const string ToolsList = "tools/list";

    public static McpType Type { get; } = SourceTypes.Get<McpType>();

    public IReadOnlyCollection<SourceType> Types { get; } = [Type];

    public IReadOnlyList<string> Steps { get; } = [TestSteps.Resolve, TestSteps.Egress, TestSteps.Connect, TestSteps.Tls, Initialize, ToolsList];

    public async Task TestAsync(TestRun run, SourceConnection connection)
    {
        if (await RestService.ResolveAsync(run, () => McpConnector.BaseUrl(connection)) is not { } url
            || !await RestService.OpenAsync(run, network, url,
                $"base_url is plain http: the token and every tool call cross the network unencrypted. Use https unless {url.IdnHost} is on a network you trust."))
        {
            return;
        }

        var session = await run.StepAsync(Initialize, token => connector.OpenAsync(connection, token), Describe);
        if (session is null)
        {
            return;
        }

        await using (session)
        {
            await run.StepAsync(ToolsList, session.ListToolsAsync, tools => tools.Count == 1 ? $"1 tool: {tools[0].Name}." : string.Create(CultureInfo.InvariantCulture,
                $"{tools.Count} tools{(tools.Count > 0 ? ": " + string.Join(", ", tools.Take(20).Select(t => t.Name)) + (tools.Count > 20 ? ", ..." : string.Empty) : string.Empty)}."));
        }
    }

    public async Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken) =>
        (await DiscoverAsync(connection, cancellationToken))!.Names;

    /// <summary>The server's tools, each with its description and input schema.</summary>
    public async Task<Discovery?> DiscoverAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        await using var session = await connector.OpenAsync(connection, cancellationToken);
        var tools = await session.ListToolsAsync(cancellationToken);
        var described = new Dictionary<string, DiscoveredTool>(StringComparer.Ordinal);
        foreach (var tool in tools)
        {
            described.TryAdd(tool.Name, new DiscoveredTool(tool.Description, tool.InputSchema));
        }

        return new Discovery(Type.SchemaKind, [.. described.Keys], Tools: described);
    }

    private static string Describe(RemoteSession session)
    {
        if (session.Client.ServerInfo is not { } server)
        {
            return "The server did not say its name.";
        }

        var name = string.IsNullOrWhiteSpace(server.Title) ? server.Name : $"{server.Title} ({server.Name})";
        return $"Server {name} {server.Version}, protocol {session.Client.NegotiatedProtocolVersion ?? "unknown"}.";
    }
}
