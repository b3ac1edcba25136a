using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Caravan.Api.Auth;
using Caravan.Api.Hosting;
using Caravan.Api.Tokens;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Caravan.Api.Mcp;

/// <summary>
/// What every request to <c>/mcp</c> passes before the MCP SDK reads it: the API key or token (the
/// same 401 and 403 bodies and <c>WWW-Authenticate: Bearer</c> as the API), the body limit (413), and the rate
/// limit. A call of a tool that reaches a database counts against <c>TestsPerMinute</c> only (the
/// tool takes that token itself, and answers a throttled call with an error result); every other
/// request counts against <c>RequestsPerMinute</c> and is a 429 when it is over.
/// </summary>
internal static class McpGate
{
    public static async Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        var (refusal, body) = await CheckAsync(http);
        if (refusal is not null)
        {
            await refusal.ExecuteAsync(http);
            return;
        }

        try
        {
            await next(http);
        }
        catch (JsonException failure) when (!http.Response.HasStarted)
        {
            // The SDK reads some parameters outside its own JSON-RPC error handling (stateless, those
            // of initialize, before any answer): a message it cannot read is the client's mistake.
            await InvalidParamsAsync(http, body!, failure);
        }
    }

    private static async Task<(IResult? Refusal, byte[]? Body)> CheckAsync(HttpContext http)
    {
        var key = ApiKeyFilter.ReadKey(http.Request);
        if (key is null)
        {
            return (ApiKeyFilter.MissingKeyChallenge(http), null);
        }

        if (ApiKeyFilter.IsBearerToken(http.Request, key))
        {
            if (await http.RequestServices.GetRequiredService<TokenAuthentication>().AdmitAsync(http, key) is { } refused)
            {
                return (refused, null);
            }
        }
        else if (!ApiKeyFilter.IsWellFormed(key)
            || await http.RequestServices.GetRequiredService<ApiKeys>().AuthenticateAsync(key, http.RequestAborted) is not { } caller)
        {
            return (ApiKeyFilter.InvalidKeyChallenge(http), null);
        }
        else
        {
            http.Features.Set(caller);
        }

        var body = await BufferBodyAsync(http);
        if (body is null)
        {
            return (ApiResults.Detail(StatusCodes.Status413PayloadTooLarge, "Request body too large."), null);
        }

        return CallsDatabaseTool(body, http.RequestServices)
            ? (null, body)
            : (RateLimitFilter.Check(http, http.RequestServices.GetRequiredService<RateLimits>(), RateBucket.Requests), body);
    }

    private static JsonTypeInfo<JsonRpcMessage> MessageInfo => (JsonTypeInfo<JsonRpcMessage>)McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(JsonRpcMessage));

    /// <summary>
    /// A 400 with the JSON-RPC error <c>-32602</c> (invalid params) for the request's id, as the SDK
    /// answers the messages it cannot read at all (with <c>-32600</c>).
    /// </summary>
    private static async Task InvalidParamsAsync(HttpContext http, byte[] body, JsonException failure)
    {
        RequestId id = default;
        try
        {
            if (JsonSerializer.Deserialize(body, MessageInfo) is JsonRpcRequest request)
            {
                id = request.Id;
            }
        }
        catch (JsonException)
        {
            // Without a readable id, the answer's id is null, as JSON-RPC asks.
        }

        JsonRpcMessage answer = new JsonRpcError
        {
            Id = id,
            Error = new JsonRpcErrorDetail { Code = (int)McpErrorCode.InvalidParams, Message = "Invalid params: " + failure.Message },
        };
        http.Response.StatusCode = StatusCodes.Status400BadRequest;
        http.Response.ContentType = "application/json; charset=utf-8";
        await JsonSerializer.SerializeAsync(http.Response.Body, answer, MessageInfo, http.RequestAborted);
    }

    /// <summary>
    /// Reads the body into memory, at most the configured limit (null when it is larger), and puts
    /// it back for the SDK to read.
    /// </summary>
    private static async Task<byte[]?> BufferBodyAsync(HttpContext http)
    {
        var request = http.Request;
        var limit = http.RequestServices.GetRequiredService<IOptions<LimitsOptions>>().Value.MaxBodyBytes;
        if (request.ContentLength > limit)
        {
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        var bytes = buffer.ToArray();
        request.Body = new MemoryStream(bytes, writable: false);
        return bytes;
    }

    /// <summary>Whether the message is a <c>tools/call</c> of a tool that reaches a database, or of a family's tool (an MCP source's).</summary>
    internal static bool CallsDatabaseTool(byte[] body, IServiceProvider services)
    {
        if (body.Length == 0)
        {
            return false;
        }

        try
        {
            using var message = JsonDocument.Parse(body);
            return message.RootElement.ValueKind == JsonValueKind.Object
                && message.RootElement.TryGetProperty("method", out var method) && method.ValueKind == JsonValueKind.String
                && method.ValueEquals("tools/call")
                && message.RootElement.TryGetProperty("params", out var parameters) && parameters.ValueKind == JsonValueKind.Object
                && parameters.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String
                && (CaravanTools.DatabaseTools.Contains(name.GetString()!) || ToolSourceFilters.Claimant(services, name.GetString()!) is not null);
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
