using System.Text.Json;
using Caravan.Api.Auth;
using ModelContextProtocol.Protocol;

namespace Caravan.Api.Connectors;

/// <summary>
/// Tools a family offers at Caravan's own <c>/mcp</c> beside Caravan's (an MCP source's remote
/// tools): listed for a caller, and called by the names it claims. The MCP server knows no family:
/// it asks every registered source of tools (found like drivers, by <c>AddConnectors()</c>).
/// </summary>
public interface IToolSource
{
    /// <summary>Whether <paramref name="toolName"/> is of this source's form; the source then answers its calls, whatever the outcome.</summary>
    bool Claims(string toolName);

    /// <summary>The tools <paramref name="caller"/> may see now.</summary>
    Task<IReadOnlyList<Tool>> ListAsync(Caller caller, CancellationToken cancellationToken);

    /// <summary>Runs a claimed tool. Every outcome is a result (<c>isError</c> for a failure), never an exception; each counts against <c>TestsPerMinute</c>.</summary>
    Task<CallToolResult> CallAsync(Caller caller, string toolName, IDictionary<string, JsonElement>? arguments, CancellationToken cancellationToken);
}
