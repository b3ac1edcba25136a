using System.Net;
using System.Net.Http.Headers;
using Caravan.Api.Auth;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Hosting;

/// <summary>
/// Per-API-key rate limits (contract sections 7 and 8), through HTTP, on a Caravan whose interval
/// clock the test moves: 429 with Retry-After and the exact body, one bucket per key, tests and
/// discovery in a bucket of their own, refused requests free, and bad settings refused at start.
/// </summary>
public sealed class RateLimitTests
{
    private const string SourcesUrl = "/api/v1/sources/";
    private const string Throttled = """{"detail":"Request was throttled."}""";

    [Fact]
    public async Task A_burst_beyond_the_limit_is_429_with_Retry_After_and_another_key_is_unaffected()
    {
        await using var caravan = await LimitedCaravan.StartAsync(requestsPerMinute: 5);
        var organization = LimitedCaravan.NewOrganization();
        using var first = await caravan.NewKeyAsync(organization);
        using var second = await caravan.NewKeyAsync(organization);

        for (var i = 0; i < 5; i++)
        {
            (await SendAsync(first, HttpMethod.Get, SourcesUrl)).AssertStatus(HttpStatusCode.OK);
        }

        var refused = await SendAsync(first, HttpMethod.Get, SourcesUrl);
        refused.AssertThrottled(retryAfter: 12);

        // Every route of the bucket, writes included, is refused, and nothing is written.
        (await SendAsync(first, HttpMethod.Post, SourcesUrl, """{"type": "motherduck", "database_name": "d", "token": "t"}""")).AssertThrottled(12);
        (await SendAsync(first, HttpMethod.Get, SourcesUrl + "1/")).AssertThrottled(12);

        // The organization's other key has a bucket of its own.
        for (var i = 0; i < 5; i++)
        {
            (await SendAsync(second, HttpMethod.Get, SourcesUrl)).AssertStatus(HttpStatusCode.OK);
        }

        var list = await SendAsync(second, HttpMethod.Get, SourcesUrl);
        list.AssertThrottled(12);

        // One interval later, one more request of the first key goes through.
        caravan.Clock.Advance(TimeSpan.FromSeconds(11.5));
        (await SendAsync(first, HttpMethod.Get, SourcesUrl)).AssertThrottled(retryAfter: 1);
        caravan.Clock.Advance(TimeSpan.FromSeconds(0.5));
        var again = await SendAsync(first, HttpMethod.Get, SourcesUrl);
        again.AssertStatus(HttpStatusCode.OK);
        Assert.Contains("\"count\":0", again.Body, StringComparison.Ordinal);
        (await SendAsync(first, HttpMethod.Get, SourcesUrl)).AssertThrottled(12);
    }

    [Fact]
    public async Task A_tokens_requests_count_against_the_key_that_minted_it_and_minting_is_throttled_in_the_STS_shape()
    {
        await using var caravan = await LimitedCaravan.StartAsync(requestsPerMinute: 4, testsPerMinute: 1);
        using var key = await caravan.NewKeyAsync(LimitedCaravan.NewOrganization());
        // Not fully configured: a query is answered at once (409), without a database.
        var id = await key.CreateSourceAsync("""{"type": "postgres", "account_name": "later"}""", "/api/v1/sources/add/");
        var minted = await SendAsync(key, HttpMethod.Post, "/api/v1/token", """{"uid": "u"}""");
        minted.AssertStatus(HttpStatusCode.OK);
        using var token = caravan.App.CreateClient();
        token.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(
            "Bearer", System.Text.Json.Nodes.JsonNode.Parse(minted.Body)!["access_token"]!.GetValue<string>());

        // Create and mint took two of the key's four; the token takes the other two, the hot GET included.
        (await SendAsync(token, HttpMethod.Get, SourcesUrl)).AssertStatus(HttpStatusCode.OK);
        (await SendAsync(token, HttpMethod.Get, SourcesUrl + $"{id}/")).AssertStatus(HttpStatusCode.OK);
        (await SendAsync(token, HttpMethod.Get, SourcesUrl)).AssertThrottled(15);
        (await SendAsync(token, HttpMethod.Get, SourcesUrl + $"{id}/")).AssertThrottled(15);
        (await SendAsync(key, HttpMethod.Get, SourcesUrl)).AssertThrottled(15);
        var mint = await SendAsync(key, HttpMethod.Post, "/api/v1/token", """{"uid": "u"}""");
        mint.AssertStatus(HttpStatusCode.TooManyRequests);
        Assert.Equal("""{"error":"Request was throttled."}""", mint.Body);
        Assert.Equal("15", mint.RetryAfter);

        // Its queries share the key's tests bucket.
        caravan.Clock.Advance(TimeSpan.FromMinutes(1));
        (await SendAsync(token, HttpMethod.Post, SourcesUrl + $"{id}/query/", """{"sql": "SELECT 1"}""")).AssertStatus(HttpStatusCode.Conflict);
        (await SendAsync(key, HttpMethod.Post, SourcesUrl + $"{id}/query/", """{"sql": "SELECT 1"}""")).AssertThrottled(60);
    }

    [Fact]
    public async Task Tests_and_discovery_count_against_their_own_bucket_only()
    {
        await using var caravan = await LimitedCaravan.StartAsync(requestsPerMinute: 100, testsPerMinute: 3);
        using var client = await caravan.NewKeyAsync(LimitedCaravan.NewOrganization());
        var id = await client.CreateSourceAsync("""{"type": "motherduck", "database_name": "d", "token": "t"}""");

        // Three tests of a source that does not exist: answered (404), and counted.
        (await SendAsync(client, HttpMethod.Post, SourcesUrl + "999999999/test/")).AssertStatus(HttpStatusCode.NotFound);
        (await SendAsync(client, HttpMethod.Get, SourcesUrl + "999999999/schemas/")).AssertStatus(HttpStatusCode.NotFound);
        (await SendAsync(client, HttpMethod.Post, SourcesUrl + "999999999/query/", """{"sql": "SELECT 1"}""")).AssertStatus(HttpStatusCode.NotFound);

        (await SendAsync(client, HttpMethod.Post, SourcesUrl + $"{id}/test/")).AssertThrottled(retryAfter: 20);
        (await SendAsync(client, HttpMethod.Get, SourcesUrl + $"{id}/schemas/")).AssertThrottled(20);
        (await SendAsync(client, HttpMethod.Post, SourcesUrl + "test/", """{"type": "motherduck", "database_name": "d", "token": "t"}""")).AssertThrottled(20);
        (await SendAsync(client, new HttpMethod("PATCH"), SourcesUrl + $"{id}/update-config/?verify=true", """{"database_name": "e"}""")).AssertThrottled(20);
        (await SendAsync(client, HttpMethod.Post, SourcesUrl + $"{id}/query/", """{"sql": "SELECT 1"}""")).AssertThrottled(20);

        // Everything else still passes: the requests bucket is untouched by tests.
        (await SendAsync(client, new HttpMethod("PATCH"), SourcesUrl + $"{id}/update-config/", """{"database_name": "e"}""")).AssertStatus(HttpStatusCode.OK);
        (await SendAsync(client, new HttpMethod("PATCH"), SourcesUrl + $"{id}/update-config/?verify=false", """{"database_name": "f"}""")).AssertStatus(HttpStatusCode.OK);
        for (var i = 0; i < 20; i++)
        {
            (await SendAsync(client, HttpMethod.Get, SourcesUrl + $"{id}/")).AssertStatus(HttpStatusCode.OK);
        }
    }

    [Fact]
    public async Task Refused_requests_do_not_count()
    {
        await using var caravan = await LimitedCaravan.StartAsync(requestsPerMinute: 3);
        using var client = await caravan.NewKeyAsync(LimitedCaravan.NewOrganization());
        using var anonymous = caravan.App.CreateClient();
        using var wrongKey = caravan.App.CreateClient();
        wrongKey.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKeys.NewKey());

        for (var i = 0; i < 10; i++)
        {
            (await SendAsync(anonymous, HttpMethod.Get, SourcesUrl)).AssertStatus(HttpStatusCode.Unauthorized);
            (await SendAsync(wrongKey, HttpMethod.Get, SourcesUrl)).AssertStatus(HttpStatusCode.Unauthorized);

            // GET of a source checks its key in its own query, and a 401 there takes nothing either.
            (await SendAsync(wrongKey, HttpMethod.Get, SourcesUrl + "1/")).AssertStatus(HttpStatusCode.Unauthorized);
        }

        // GET of a source counts like any request (here a 404: the organization has none).
        (await SendAsync(client, HttpMethod.Get, SourcesUrl + "1/")).AssertStatus(HttpStatusCode.NotFound);
        for (var i = 0; i < 2; i++)
        {
            (await SendAsync(client, HttpMethod.Get, SourcesUrl)).AssertStatus(HttpStatusCode.OK);
        }

        // Refusals of the key itself (429) take nothing either: one interval buys exactly one request.
        for (var i = 0; i < 10; i++)
        {
            (await SendAsync(client, HttpMethod.Get, SourcesUrl)).AssertThrottled(20);
        }

        caravan.Clock.Advance(TimeSpan.FromSeconds(20));
        (await SendAsync(client, HttpMethod.Get, SourcesUrl)).AssertStatus(HttpStatusCode.OK);
        (await SendAsync(client, HttpMethod.Get, SourcesUrl)).AssertThrottled(20);
    }

    [Fact]
    public async Task Unauthenticated_routes_are_not_limited()
    {
        await using var caravan = await LimitedCaravan.StartAsync(requestsPerMinute: 1);
        using var anonymous = caravan.App.CreateClient();
        for (var i = 0; i < 5; i++)
        {
            (await SendAsync(anonymous, HttpMethod.Get, "/healthz")).AssertStatus(HttpStatusCode.OK);
            (await SendAsync(anonymous, HttpMethod.Get, "/api/schema/")).AssertStatus(HttpStatusCode.OK);
        }
    }

    [Fact]
    public async Task Disabled_limits_never_answer_429()
    {
        await using var caravan = await LimitedCaravan.StartAsync(requestsPerMinute: 1, testsPerMinute: 1, enabled: false);
        using var client = await caravan.NewKeyAsync(LimitedCaravan.NewOrganization());
        for (var i = 0; i < 30; i++)
        {
            (await SendAsync(client, HttpMethod.Get, SourcesUrl)).AssertStatus(HttpStatusCode.OK);
            (await SendAsync(client, HttpMethod.Post, SourcesUrl + "999999999/test/")).AssertStatus(HttpStatusCode.NotFound);
        }
    }

    [Theory]
    [InlineData("RequestsPerMinute", "0")]
    [InlineData("RequestsPerMinute", "-5")]
    [InlineData("RequestsPerMinute", "abc")]
    [InlineData("RequestsPerMinute", "99999999999")]
    [InlineData("TestsPerMinute", "1.5")]
    [InlineData("TestsPerMinute", "0")]
    [InlineData("Enabled", "maybe")]
    public async Task A_bad_setting_stops_the_start_with_a_message_naming_it(string setting, string value)
    {
        // The reason reaches the operator: in the failure itself or in the log of the failed start.
        var texts = await OwnCaravan.RefusedStartTextsAsync(new Dictionary<string, string?> { [$"Caravan:RateLimits:{setting}"] = value });
        Assert.Contains(texts, t => t.Contains($"Caravan__RateLimits__{setting} must be", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_program_refuses_to_start_with_a_bad_limit_and_says_which_on_standard_error()
    {
        var directory = CaravanApp.NewDataDirectory();
        var settings = new Dictionary<string, string?>
        {
            ["Caravan:Storage:Provider"] = "Sqlite",
            ["ConnectionStrings:Caravan"] = $"Data Source={Path.Combine(directory, "caravan.db")}",
            ["Caravan:Secrets:MasterKeyFile"] = Path.Combine(directory, "master.key"),
            ["Caravan:RateLimits:Enabled"] = "true",
            ["Caravan:RateLimits:TestsPerMinute"] = "0",
        };

        var result = await CaravanProcess.RunAsync(settings, directory, "--urls", "http://127.0.0.1:0");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("Caravan could not start", result.Error, StringComparison.Ordinal);
        Assert.Contains("Caravan__RateLimits__TestsPerMinute must be a positive whole number", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Error, StringComparison.Ordinal);
    }

    private static async Task<Sent> SendAsync(HttpClient client, HttpMethod method, string url, string? body = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(url, UriKind.Relative));
        if (body is not null)
        {
            request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        }

        using var response = await client.SendAsync(request);
        return new Sent(
            response.StatusCode,
            await response.Content.ReadAsStringAsync(),
            response.Content.Headers.ContentType?.ToString(),
            response.Headers.TryGetValues("Retry-After", out var values) ? string.Join(",", values) : null);
    }

    private sealed record Sent(HttpStatusCode Status, string Body, string? ContentType, string? RetryAfter)
    {
        public void AssertStatus(HttpStatusCode status) => Assert.True(Status == status, $"Expected {(int)status}, got {(int)Status}: {Body}");

        public void AssertThrottled(int retryAfter)
        {
            AssertStatus(HttpStatusCode.TooManyRequests);
            Assert.Equal(Throttled, Body);
            Assert.Equal("application/json; charset=utf-8", ContentType);
            Assert.Equal(retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture), RetryAfter);
        }
    }

    /// <summary>A Caravan with rate limits on, whose interval clock only the test moves.</summary>
    private sealed class LimitedCaravan : IAsyncDisposable
    {
        private readonly OwnCaravan _own;

        private LimitedCaravan(OwnCaravan own, WebApplicationFactory<Program> app, ManualClock clock)
        {
            _own = own;
            App = app;
            Clock = clock;
        }

        public WebApplicationFactory<Program> App { get; }

        public ManualClock Clock { get; }

        public static Task<LimitedCaravan> StartAsync(int requestsPerMinute, int testsPerMinute = 60, bool enabled = true)
        {
            var clock = new ManualClock();
            var own = new OwnCaravan(new Dictionary<string, string?>
            {
                [CaravanApp.RateLimitsEnabled] = enabled ? "true" : "false",
                ["Caravan:RateLimits:RequestsPerMinute"] = requestsPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Caravan:RateLimits:TestsPerMinute"] = testsPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
            var app = own.WithWebHostBuilder(builder => builder.ConfigureTestServices(services => services.AddSingleton<TimeProvider>(clock)));
            return Task.FromResult(new LimitedCaravan(own, app, clock));
        }

        public static string NewOrganization() => Unique.Name("rate-");

        /// <summary>A client with a new key of <paramref name="organization"/>, created if need be.</summary>
        public async Task<HttpClient> NewKeyAsync(string organization)
        {
            var (_, key) = await App.Services.GetRequiredService<ApiKeys>().CreateAsync(organization);
            var client = App.CreateClient();
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            return client;
        }

        public async ValueTask DisposeAsync()
        {
            await App.DisposeAsync();
            await _own.DisposeAsync();
        }
    }
}
