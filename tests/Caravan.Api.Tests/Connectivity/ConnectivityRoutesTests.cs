using System.Net;
using System.Net.Http.Headers;
using Caravan.Api.Auth;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>
/// The three routes of section 8 as routes: keys, ids, other organizations and trailing slashes.
/// The sources point at 169.254.169.254, which the egress policy refuses, so no server is needed.
/// </summary>
public sealed class ConnectivityRoutesTests(CaravanApp app)
{
    private const string NoCredentials = """{"detail":"Authentication credentials were not provided."}""";
    private const string InvalidKey = """{"detail":"Invalid API key."}""";
    private static readonly string Unreachable = Pg.Body("169.254.169.254", 5432);

    public static TheoryData<string, string, bool> Routes() => new()
    {
        { "POST", "/api/v1/sources/test/", true },
        { "POST", "/api/v1/sources/test", true },
        { "POST", "/api/v1/sources/{id}/test/", false },
        { "POST", "/api/v1/sources/{id}/test", false },
        { "GET", "/api/v1/sources/{id}/schemas/", false },
        { "GET", "/api/v1/sources/{id}/schemas", false },
    };

    public static TheoryData<string, string> IdRoutes() => new()
    {
        { "POST", "/api/v1/sources/{id}/test/" },
        { "POST", "/api/v1/sources/{id}/test" },
        { "GET", "/api/v1/sources/{id}/schemas/" },
        { "GET", "/api/v1/sources/{id}/schemas" },
    };

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Without_a_key_every_route_is_401(string method, string url, bool hasBody)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Unreachable);
        using var anonymous = app.CreateClient();

        var answer = await anonymous.SendAsync(method, url.WithId(id), hasBody ? Unreachable : null);

        answer.AssertExactly(HttpStatusCode.Unauthorized, NoCredentials);
        Assert.Equal("Bearer", answer.WwwAuthenticate);
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task With_a_wrong_key_every_route_is_401(string method, string url, bool hasBody)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Unreachable);
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKeys.NewKey());

        var answer = await client.SendAsync(method, url.WithId(id), hasBody ? Unreachable : null);

        answer.AssertExactly(HttpStatusCode.Unauthorized, InvalidKey);
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task With_a_key_every_route_answers_with_or_without_the_trailing_slash(string method, string url, bool hasBody)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Unreachable);
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Add("X-API-Key", org.Key);

        var answer = await client.SendAsync(method, url.WithId(id), hasBody ? Unreachable : null);

        if (method == "GET")
        {
            answer.AssertStatus(HttpStatusCode.BadGateway);
            Assert.Contains("egress_denied", answer.Body, StringComparison.Ordinal);
        }
        else
        {
            answer.AssertStatus(HttpStatusCode.OK);
            Assert.False(answer.Json["ok"]!.GetValue<bool>());
        }

        Assert.Equal(Wire.JsonContentType, answer.ContentType);
    }

    [Theory]
    [MemberData(nameof(IdRoutes))]
    public async Task An_id_that_is_not_the_callers_is_404(string method, string url)
    {
        var owner = await app.NewOrganizationAsync();
        var other = await app.NewOrganizationAsync();
        var id = await owner.Http.CreateSourceAsync(Unreachable);

        var answer = await other.Http.SendAsync(method, url.WithId(id));

        answer.AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
    }

    [Theory]
    [MemberData(nameof(IdRoutes))]
    public async Task An_unknown_or_malformed_id_is_404(string method, string url)
    {
        var org = await app.NewOrganizationAsync();

        foreach (var id in new[] { "999999999999", "0", "-1", "abc", "1e3", "99999999999999999999" })
        {
            var answer = await org.Http.SendAsync(method, url.Replace("{id}", id, StringComparison.Ordinal));
            answer.AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        }
    }

    [Theory]
    [MemberData(nameof(IdRoutes))]
    public async Task A_deleted_source_is_404(string method, string url)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Unreachable);
        await org.Http.DeleteAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent);

        var answer = await org.Http.SendAsync(method, url.WithId(id));

        answer.AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    public async Task An_unsaved_test_that_is_not_json_is_415_and_stores_nothing(string mediaType)
    {
        var org = await app.NewOrganizationAsync();

        var answer = await org.Http.SendAsync("POST", "/api/v1/sources/test/", Unreachable, mediaType);

        answer.AssertStatus(HttpStatusCode.UnsupportedMediaType);
        Assert.Equal(0, await org.CountAsync());
    }

    [Fact]
    public async Task A_stored_test_ignores_a_body()
    {
        // The stored configuration is tested, not a body sent along with the request.
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Unreachable);

        var answer = await org.Http.SendAsync("POST", SourceRoutes.Url(id, "test"), Pg.Body("127.0.0.1", Loopback.ClosedPort()));

        answer.AssertStatus(HttpStatusCode.OK);
        Reports.AssertFailedAt(answer.Json, "egress", "egress_denied");
    }

    [Theory]
    [InlineData("Caravan:Connectivity:TestTimeoutSeconds", "0", "Caravan__Connectivity__TestTimeoutSeconds")]
    [InlineData("Caravan:Connectivity:TestTimeoutSeconds", "61", "Caravan__Connectivity__TestTimeoutSeconds")]
    [InlineData("Caravan:Connectivity:ConnectTimeoutSeconds", "0", "Caravan__Connectivity__ConnectTimeoutSeconds")]
    public async Task A_deadline_out_of_range_stops_the_start_naming_the_setting(string key, string value, string setting)
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { [key] = value });

        var failure = await Record.ExceptionAsync(() => own.NewOrganizationAsync());

        // Program reports the failure (and the host logs it); the factory then only sees a stopped host.
        Assert.NotNull(failure);
        Assert.Contains(own.Logs.Lines, l => l.Contains(setting, StringComparison.Ordinal));
    }
}
