using System.Text;
using System.Text.Json;
using Caravan.Api.Tests.Infrastructure;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Caravan.Api.Tests.Mcp;

/// <summary>Connects the MCP C# client to the in-process Caravan, and reads tool results.</summary>
internal static class McpKit
{
    /// <summary>An MCP client on <c>/mcp</c> sending <paramref name="key"/> as a bearer token (or as X-API-Key).</summary>
    public static Task<McpClient> ConnectAsync(CaravanApp app, string key, bool asApiKeyHeader = false) =>
        ConnectAsync(app.CreateClient(), key, asApiKeyHeader);

    /// <summary>The same through <paramref name="http"/> (its base address is the server's, for a Caravan process of its own); the client owns it.</summary>
    public static async Task<McpClient> ConnectAsync(HttpClient http, string key, bool asApiKeyHeader = false)
    {
        var options = new HttpClientTransportOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = asApiKeyHeader
                ? new Dictionary<string, string> { ["X-API-Key"] = key }
                : new Dictionary<string, string> { ["Authorization"] = "Bearer " + key },
        };
        var transport = new HttpClientTransport(options, http, ownsHttpClient: true);
        // The probe's default 5 s is short on a loaded test machine: a probe given up makes the
        // in-process server answer 499, which the client takes for a failure rather than falling back.
        return await McpClient.CreateAsync(transport, new McpClientOptions { DiscoverProbeTimeout = TimeSpan.FromSeconds(60) },
            cancellationToken: TestContext.Current.CancellationToken);
    }

    /// <summary>One JSON-RPC message as a raw POST to <c>/mcp</c>, as a client without the SDK sends it.</summary>
    public static HttpRequestMessage Message(string json)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("MCP-Protocol-Version", "2025-06-18");
        request.Headers.Accept.ParseAdd("application/json");
        request.Headers.Accept.ParseAdd("text/event-stream");
        return request;
    }

    public static Task<CallToolResult> CallAsync(this McpClient client, string tool, Dictionary<string, object?>? arguments = null) =>
        client.CallToolAsync(tool, arguments ?? [], cancellationToken: TestContext.Current.CancellationToken).AsTask();

    /// <summary>The result of a call that must succeed: its structured content.</summary>
    public static JsonElement Ok(this CallToolResult result)
    {
        Assert.True(result.IsError is not true, $"The tool failed: {Text(result)}");
        Assert.NotNull(result.StructuredContent);
        return result.StructuredContent!.Value;
    }

    /// <summary>The result of a call that must fail: its code and message.</summary>
    public static (string Code, string Message) Error(this CallToolResult result)
    {
        Assert.True(result.IsError, $"The tool did not fail: {Text(result)}");
        var error = result.StructuredContent!.Value.GetProperty("error");
        var message = error.GetProperty("detail").GetString()!;
        Assert.Equal(message, Text(result));
        return (error.GetProperty("code").GetString()!, message);
    }

    public static string Text(CallToolResult result) => string.Join("\n", result.Content.OfType<TextContentBlock>().Select(b => b.Text));
}
