using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Mcp;

/// <summary>
/// Messages to <c>/mcp</c> that are not what the protocol expects (not JSON, not JSON-RPC, wrong
/// types, missing fields, batches, huge or odd ids) are answered with a JSON-RPC error, or a 400
/// that carries one, never with a 500. Notifications and responses, which JSON-RPC never answers,
/// are accepted with a 202.
/// </summary>
public sealed class McpMalformedMessageTests(CaravanApp app)
{
    public enum Answer
    {
        /// <summary>400 with a JSON-RPC error (the message or its params could not be read).</summary>
        BadRequest,

        /// <summary>200 with a JSON-RPC error for the request's id.</summary>
        Error,

        /// <summary>200 with a tool result that is an error.</summary>
        ToolError,

        /// <summary>200 with a JSON-RPC result (the SDK takes the message as it is).</summary>
        Result,

        /// <summary>202 and no body: a notification or a response, which JSON-RPC never answers.</summary>
        Accepted,
    }

    public static readonly TheoryData<string, string, Answer> Messages = new()
    {
        // Issue #12: initialize with params {} was a 500 (a JsonException out of the transport).
        { "initialize, params {}", """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}""", Answer.BadRequest },
        { "initialize, params a string", """{"jsonrpc":"2.0","id":1,"method":"initialize","params":"x"}""", Answer.BadRequest },
        { "initialize, params an array", """{"jsonrpc":"2.0","id":"a","method":"initialize","params":[1]}""", Answer.BadRequest },
        { "initialize, protocolVersion a number", """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":5,"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}""", Answer.BadRequest },
        { "initialize, capabilities a string", """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":"x","clientInfo":{"name":"t","version":"1"}}}""", Answer.BadRequest },
        { "initialize, no clientInfo", """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}""", Answer.BadRequest },
        { "initialize, clientInfo.name a number", """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":1,"version":"1"}}}""", Answer.BadRequest },
        { "initialize, params null", """{"jsonrpc":"2.0","id":1,"method":"initialize","params":null}""", Answer.Result },
        { "not JSON", """{"jsonrpc":""", Answer.BadRequest },
        { "empty body", "", Answer.BadRequest },
        { "text", "hello", Answer.BadRequest },
        { "invalid UTF-8", "\uFFFF", Answer.BadRequest },
        { "an empty batch", "[]", Answer.BadRequest },
        { "a batch", """[{"jsonrpc":"2.0","id":1,"method":"ping"}]""", Answer.BadRequest },
        { "a string", "\"x\"", Answer.BadRequest },
        { "a number", "42", Answer.BadRequest },
        { "null", "null", Answer.BadRequest },
        { "an empty object", "{}", Answer.BadRequest },
        { "no jsonrpc", """{"id":1,"method":"ping"}""", Answer.BadRequest },
        { "jsonrpc 1.0", """{"jsonrpc":"1.0","id":1,"method":"ping"}""", Answer.BadRequest },
        { "jsonrpc a number", """{"jsonrpc":2,"id":1,"method":"ping"}""", Answer.BadRequest },
        { "method a number", """{"jsonrpc":"2.0","id":1,"method":5}""", Answer.BadRequest },
        { "method null", """{"jsonrpc":"2.0","id":1,"method":null}""", Answer.BadRequest },
        { "id an object", """{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}""", Answer.BadRequest },
        { "id true", """{"jsonrpc":"2.0","id":true,"method":"ping"}""", Answer.BadRequest },
        { "id an array", """{"jsonrpc":"2.0","id":[1],"method":"ping"}""", Answer.BadRequest },
        { "id a fraction", """{"jsonrpc":"2.0","id":1.5,"method":"ping"}""", Answer.BadRequest },
        { "id beyond 64 bits", """{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}""", Answer.BadRequest },
        { "id 1e400", """{"jsonrpc":"2.0","id":1e400,"method":"ping"}""", Answer.BadRequest },
        { "id null", """{"jsonrpc":"2.0","id":null,"method":"ping"}""", Answer.BadRequest },
        { "id a 200 kB string", "{\"jsonrpc\":\"2.0\",\"id\":\"" + new string('7', 200_000) + "\",\"method\":\"ping\"}", Answer.Result },
        { "nested 5000 deep", new string('[', 5000) + new string(']', 5000), Answer.BadRequest },
        { "params nested 2000 deep", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":" + string.Concat(Enumerable.Repeat("{\"a\":", 2000)) + "1" + new string('}', 2000) + "}", Answer.BadRequest },
        { "an unknown method", """{"jsonrpc":"2.0","id":1,"method":"no/such"}""", Answer.Error },
        { "tools/call, params {}", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}""", Answer.Error },
        { "tools/call, no params", """{"jsonrpc":"2.0","id":1,"method":"tools/call"}""", Answer.Error },
        { "tools/call, params an array", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}""", Answer.Error },
        { "tools/call, name a number", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}""", Answer.Error },
        { "tools/call, arguments an array", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_sources","arguments":[1]}}""", Answer.Error },
        { "tools/call, an unknown tool", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope","arguments":{}}}""", Answer.Error },
        { "tools/call, source_id a string", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_schemas","arguments":{"source_id":"abc"}}}""", Answer.ToolError },
        { "tools/call, arguments of wrong types", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"describe_table","arguments":{"source_id":{},"schema":1,"table":[]}}}""", Answer.ToolError },
        { "tools/call, source_id 1e400", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","arguments":{"source_id":1e400,"sql":5}}}""", Answer.ToolError },
        { "tools/list, params a string", """{"jsonrpc":"2.0","id":1,"method":"tools/list","params":"x"}""", Answer.Error },
        { "tools/list, cursor a number", """{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":5}}""", Answer.Error },
        { "_meta a string", """{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":"x"}}""", Answer.Error },
        { "a response", """{"jsonrpc":"2.0","id":1,"result":{}}""", Answer.Accepted },
        { "an error response with a string code", """{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}""", Answer.BadRequest },
        { "a notification with params a string", """{"jsonrpc":"2.0","method":"notifications/initialized","params":"x"}""", Answer.Accepted },
        { "a cancellation of an object id", """{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":{}}}""", Answer.Accepted },
    };

    [Theory]
    [MemberData(nameof(Messages))]
    public async Task A_malformed_message_is_answered_by_the_protocol_never_with_a_500(string what, string body, Answer expected)
    {
        var org = await app.NewOrganizationAsync();
        using var http = app.CreateClient();
        using var request = McpKit.Message(body);
        request.Headers.TryAddWithoutValidation("X-API-Key", org.Key);

        using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        var context = $"{what}: {(int)response.StatusCode} {text[..Math.Min(400, text.Length)]}";

        var status = expected switch
        {
            Answer.BadRequest => HttpStatusCode.BadRequest,
            Answer.Accepted => HttpStatusCode.Accepted,
            _ => HttpStatusCode.OK,
        };
        Assert.True(response.StatusCode == status, context);
        if (expected == Answer.Accepted)
        {
            Assert.True(text.Length == 0, context);
            return;
        }

        var answer = Message(text);
        Assert.True(answer["jsonrpc"]?.GetValue<string>() == "2.0", context);
        switch (expected)
        {
            case Answer.BadRequest or Answer.Error:
                Assert.True(answer["error"]?["code"]?.GetValue<int>() is >= -32768 and <= -32000, context);
                Assert.False(string.IsNullOrEmpty(answer["error"]!["message"]?.GetValue<string>()), context);
                Assert.True(answer["result"] is null, context);
                break;
            case Answer.ToolError:
                Assert.True(answer["result"]?["isError"]?.GetValue<bool>() == true, context);
                break;
            default:
                Assert.True(answer["result"] is JsonObject && answer["error"] is null, context);
                break;
        }

        // Where the request's id can be read, the answer carries it.
        if (expected != Answer.BadRequest || what.StartsWith("initialize", StringComparison.Ordinal))
        {
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(body)!["id"], answer["id"]), context);
        }
    }

    [Fact]
    public async Task The_issues_initialize_is_invalid_params_for_its_id()
    {
        var org = await app.NewOrganizationAsync();
        using var http = app.CreateClient();
        using var request = McpKit.Message("""{"jsonrpc":"2.0","id":7,"method":"initialize","params":{}}""");
        request.Headers.TryAddWithoutValidation("X-API-Key", org.Key);

        using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);
        var answer = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(7, answer["id"]!.GetValue<int>());
        Assert.Equal(-32602, answer["error"]!["code"]!.GetValue<int>());
        Assert.Contains("protocolVersion", answer["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    /// <summary>The JSON-RPC message of a plain JSON answer or of the one event of an SSE answer.</summary>
    private static JsonNode Message(string text)
    {
        var data = text.Split('\n').FirstOrDefault(l => l.StartsWith("data:", StringComparison.Ordinal));
        return JsonNode.Parse(data is null ? text : data["data:".Length..])!;
    }
}
