namespace Caravan.Api.Connectors.Mcp;

/// <summary>
/// MCP: a remote Model Context Protocol server (contract 9.3), reached over Streamable HTTP or SSE
/// at <c>base_url</c> with <c>access_token</c> sent as a bearer token. Its "schemas" are its tools;
/// the selected ones are offered to agents at Caravan's own <c>/mcp</c> (docs/mcp.md).
/// </summary>
public sealed class McpType : SourceType
{
    public override string Name => "MCP";

    public override string DisplayName => "MCP server";

    public override int Order => 120;

    public override IReadOnlyList<Field> Fields => field ??=
    [
        Field.Url("base_url", "The MCP server's endpoint, Streamable HTTP or SSE, e.g. https://mcp.example.com/mcp").AsRequired(),
        Field.Secret("access_token", "Token sent to the server as Authorization: Bearer; stored encrypted, never shown to agents"),
        Field.Names("selected_tools", "Tools to offer to agents; empty or absent offers every tool of the server"),
    ];

    public override string SchemaKind => "tools";

    public override string ServerNoun => "MCP server";

    /// <summary>camelAI: "if omitted, every tool discovered on the server is enabled".</summary>
    public override bool OffersAllWhenNoneSelected => true;

    public override string QueryUnsupported =>
        "MCP sources offer tools, not SQL: call their tools through Caravan's /mcp, where they are named <source id>__<tool>.";
}
