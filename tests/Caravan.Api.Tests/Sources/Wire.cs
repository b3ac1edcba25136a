using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources.Types;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Caravan.Api.Tests.Sources;

/// <summary>One answer as it went over the wire: status, the exact body text and the headers the contract names.</summary>
public sealed record Answer(HttpStatusCode Status, string Body, string? ContentType, string? WwwAuthenticate, Uri? Location)
{
    public JsonNode Json => JsonNode.Parse(Body)!;

    public override string ToString() => $"{(int)Status} {ContentType}: {Body}";
}

/// <summary>Raw requests and the fixed answers of the contract, for the route-by-route tests.</summary>
internal static class Wire
{
    public const string Postgres = """{"type": "postgres", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""";

    public const string NotFound = """{"detail":"Not found."}""";

    public const string InvalidPage = """{"detail":"Invalid page."}""";

    public const string JsonContentType = "application/json; charset=utf-8";

    public const string ReadOnlyFieldMessage = "Not a valid field here; change configuration with update-config.";

    public const string RfcSecondsPattern = @"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$";

    /// <summary>A client of <paramref name="org"/> that shows redirects instead of following them.</summary>
    public static HttpClient NoRedirectClient(CaravanApp app, OrgClient org)
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", org.Key);
        return client;
    }

    /// <summary>Sends one request; a body goes with <paramref name="contentType"/> exactly as given (no charset added).</summary>
    public static async Task<Answer> SendAsync(this HttpClient client, string method, string url, string? body = null, string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(url, UriKind.Relative));
        if (body is not null)
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }

        return await client.ExchangeAsync(request);
    }

    /// <summary>Sends <paramref name="request"/> and keeps what came back.</summary>
    public static async Task<Answer> ExchangeAsync(this HttpClient client, HttpRequestMessage request)
    {
        using var response = await client.SendAsync(request);
        return new Answer(
            response.StatusCode,
            await response.Content.ReadAsStringAsync(),
            response.Content.Headers.ContentType?.ToString(),
            response.Headers.WwwAuthenticate.Count == 0 ? null : response.Headers.WwwAuthenticate.ToString(),
            response.Headers.Location);
    }

    public static Task<Answer> GetRawAsync(this HttpClient client, string url) => client.SendAsync("GET", url);

    /// <summary>Asserts the status, the JSON content type and the exact body text.</summary>
    public static void AssertExactly(this Answer answer, HttpStatusCode status, string body)
    {
        Assert.True(answer.Status == status, $"Expected {(int)status}, got {answer}");
        Assert.Equal(body, answer.Body);
        Assert.Equal(JsonContentType, answer.ContentType);
    }

    public static void AssertStatus(this Answer answer, HttpStatusCode status) =>
        Assert.True(answer.Status == status, $"Expected {(int)status}, got {answer}");

    public static async Task<long> CountAsync(this OrgClient org) =>
        (await org.Http.GetAsync(new Uri("/api/v1/sources/?page_size=1000", UriKind.Relative)).Expect(HttpStatusCode.OK))["count"]!.GetValue<long>();

    public static async Task<long[]> ListedIdsAsync(this OrgClient org)
    {
        var body = await org.Http.GetAsync(new Uri("/api/v1/sources/?page_size=1000", UriKind.Relative)).Expect(HttpStatusCode.OK);
        return [.. body["results"]!.AsArray().Select(r => r!["id"]!.GetValue<long>())];
    }

    /// <summary>
    /// The write routes with a body (section 4). <c>{id}</c> stands for a live source of the caller.
    /// </summary>
    public static TheoryData<string, string> WriteRoutes()
    {
        var routes = new TheoryData<string, string>
        {
            { "POST", "/api/v1/sources/" },
            { "POST", "/api/v1/sources/add/" },
            { "PUT", "/api/v1/sources/{id}/" },
            { "PATCH", "/api/v1/sources/{id}/" },
            { "PATCH", "/api/v1/sources/{id}/update-config/" },
        };
        foreach (var slug in TypeCatalog.AddRouteSlugs)
        {
            routes.Add("POST", $"/api/v1/sources/add/{slug}/");
        }

        return routes;
    }

    /// <summary>Every route of section 4 (and the revisions of section 8), with a body that succeeds for a live source <c>{id}</c>, and its success status.</summary>
    public static IReadOnlyList<(string Method, string Url, string? Body, HttpStatusCode Status)> AllRoutes()
    {
        var routes = new List<(string, string, string?, HttpStatusCode)>
        {
            ("GET", "/api/v1/sources/", null, HttpStatusCode.OK),
            ("POST", "/api/v1/sources/", Postgres, HttpStatusCode.OK),
            ("POST", "/api/v1/sources/add/", """{"account_name": "Legacy", "type": "mysql"}""", HttpStatusCode.OK),
            ("GET", "/api/v1/sources/{id}/", null, HttpStatusCode.OK),
            ("PUT", "/api/v1/sources/{id}/", """{"account_name": "Renamed"}""", HttpStatusCode.OK),
            ("PATCH", "/api/v1/sources/{id}/", """{"account_name": "Renamed"}""", HttpStatusCode.OK),
            ("PATCH", "/api/v1/sources/{id}/update-config/", """{"port": 6543}""", HttpStatusCode.OK),
            ("DELETE", "/api/v1/sources/{id}/", null, HttpStatusCode.NoContent),
            ("GET", "/api/v1/sources/{id}/revisions/", null, HttpStatusCode.OK),
        };
        foreach (var slug in TypeCatalog.AddRouteSlugs)
        {
            routes.Add(("POST", $"/api/v1/sources/add/{slug}/", TypeCatalog.ForRoute(slug).ValidBody, HttpStatusCode.OK));
        }

        return routes;
    }

    /// <summary>Whether a route template creates a source (has no <c>{id}</c>).</summary>
    public static bool IsCreate(string url) => !url.Contains("{id}", StringComparison.Ordinal);

    public static string WithId(this string url, long id) => url.Replace("{id}", id.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
}
