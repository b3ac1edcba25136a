using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Caravan.Api.Tests.Infrastructure;

public static class HttpExtensions
{
    public static Task<HttpResponseMessage> PostJsonAsync(this HttpClient client, string url, string json) =>
        client.SendAsync(new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(json, Encoding.UTF8, "application/json") });

    public static Task<HttpResponseMessage> PatchJsonAsync(this HttpClient client, string url, string json) =>
        client.SendAsync(new HttpRequestMessage(HttpMethod.Patch, url) { Content = new StringContent(json, Encoding.UTF8, "application/json") });

    public static Task<HttpResponseMessage> PutJsonAsync(this HttpClient client, string url, string json) =>
        client.SendAsync(new HttpRequestMessage(HttpMethod.Put, url) { Content = new StringContent(json, Encoding.UTF8, "application/json") });

    public static async Task<JsonNode> JsonAsync(this HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

    /// <summary>Asserts the status and returns the body as JSON.</summary>
    public static async Task<JsonNode> Expect(this Task<HttpResponseMessage> pending, HttpStatusCode status)
    {
        using var response = await pending;
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"Expected {(int)status}, got {(int)response.StatusCode}: {body}");
        return body.Length == 0 ? JsonValue.Create(string.Empty)! : JsonNode.Parse(body)!;
    }

    /// <summary>Creates a source and returns its id.</summary>
    public static async Task<long> CreateSourceAsync(this HttpClient client, string json, string url = "/api/v1/sources/")
    {
        var body = await client.PostJsonAsync(url, json).Expect(HttpStatusCode.OK);
        return body["id"]!.GetValue<long>();
    }

    /// <summary>
    /// Asserts the headers of every page Caravan serves to a browser (the console, the API docs):
    /// a policy that starts from nothing and forbids framing, no sniffing, no referrer. Returns the policy.
    /// </summary>
    public static string AssertBrowserPageHeaders(this HttpResponseMessage response)
    {
        var csp = string.Join(' ', response.Headers.GetValues("Content-Security-Policy"));
        Assert.StartsWith("default-src 'none'; ", csp, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.Contains("base-uri 'none'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-eval", csp, StringComparison.Ordinal);
        Assert.Equal("nosniff", string.Join(',', response.Headers.GetValues("X-Content-Type-Options")));
        Assert.Equal("DENY", string.Join(',', response.Headers.GetValues("X-Frame-Options")));
        Assert.Equal("no-referrer", string.Join(',', response.Headers.GetValues("Referrer-Policy")));
        Assert.Equal("same-origin", string.Join(',', response.Headers.GetValues("Cross-Origin-Opener-Policy")));
        return csp;
    }

    public static string Compact(this JsonNode node) => node.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
}
