using System.Net;
using System.Net.Http.Headers;
using Caravan.Api.Auth;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Sources;

/// <summary>Section 2: every /api/v1 route needs a key, sent either way; the 401 answers are exact.</summary>
public sealed class AuthTests(CaravanApp app)
{
    private const string NoCredentials = """{"detail":"Authentication credentials were not provided."}""";
    private const string InvalidKey = """{"detail":"Invalid API key."}""";

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Every_route_without_credentials_is_401_with_a_bearer_challenge(string method, string url, string? body)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);
        using var anonymous = app.CreateClient();

        var answer = await anonymous.SendAsync(method, url.WithId(id), body);

        answer.AssertExactly(HttpStatusCode.Unauthorized, NoCredentials);
        Assert.Equal("Bearer", answer.WwwAuthenticate);
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Every_route_with_a_wrong_key_is_401_invalid_key(string method, string url, string? body)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKeys.NewKey());

        var answer = await client.SendAsync(method, url.WithId(id), body);

        answer.AssertExactly(HttpStatusCode.Unauthorized, InvalidKey);
        Assert.Equal("Bearer", answer.WwwAuthenticate);
        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Every_route_accepts_the_key_in_X_API_Key(string method, string url, string? body)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Add("X-API-Key", org.Key);

        var answer = await client.SendAsync(method, url.WithId(id), body);

        Assert.True(answer.Status is HttpStatusCode.OK or HttpStatusCode.NoContent, answer.ToString());
    }

    [Theory]
    [InlineData("Authorization", "Bearer cvn_thisIsNotAKeyThatExists0000000000000000000")]
    [InlineData("Authorization", "Bearer not-even-the-prefix")]
    [InlineData("Authorization", "Basic dXNlcjpwYXNzd29yZA==")]
    [InlineData("Authorization", "Token {key}")]
    [InlineData("Authorization", "Bearer {key} extra")]
    [InlineData("Authorization", "Bearer cvn_with space")]
    [InlineData("X-API-Key", "cvn_wrong")]
    [InlineData("X-API-Key", "{key}x")]
    [InlineData("X-API-Key", "cvn_ab cd")]
    public async Task A_bad_key_is_401_invalid_key_with_a_bearer_challenge(string header, string value)
    {
        var org = await app.NewOrganizationAsync();
        using var client = app.CreateClient();
        Assert.True(client.DefaultRequestHeaders.TryAddWithoutValidation(header, value.Replace("{key}", org.Key, StringComparison.Ordinal)));

        var answer = await client.GetRawAsync("/api/v1/sources/");

        answer.AssertExactly(HttpStatusCode.Unauthorized, InvalidKey);
        Assert.Equal("Bearer", answer.WwwAuthenticate);
    }

    [Theory]
    [InlineData("Authorization", "Bearer cvn_clé")]
    [InlineData("X-API-Key", "cvn_ключ")]
    public async Task A_key_with_non_ascii_characters_is_401_invalid_key(string header, string value)
    {
        using var client = app.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("/api/v1/sources/", UriKind.Relative));
        Assert.True(request.Headers.TryAddWithoutValidation(header, value));

        var answer = await client.ExchangeAsync(request);

        answer.AssertExactly(HttpStatusCode.Unauthorized, InvalidKey);
        Assert.Equal("Bearer", answer.WwwAuthenticate);
    }

    [Theory]
    [InlineData("/api/v1/sources/not-a-number/")]
    [InlineData("/api/v1/sources/0/")]
    [InlineData("/api/v1/sources/9223372036854775807/")]
    [InlineData("/api/v1/sources/{id}/")]
    public async Task Get_of_a_source_checks_the_key_before_the_id_whatever_the_id(string url)
    {
        // GET of a source checks the key in the same query as its read: a bad or revoked key is a
        // 401 whether or not the id could exist, so ids cannot be probed without a key.
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        using var wrong = app.CreateClient();
        wrong.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKeys.NewKey());
        var revoked = await app.NewOrganizationAsync();
        Assert.True(await app.Services.GetRequiredService<ApiKeys>().RevokeAsync(revoked.KeyId));

        foreach (var client in new[] { wrong, revoked.Http })
        {
            var answer = await client.GetRawAsync(url.WithId(id));
            answer.AssertExactly(HttpStatusCode.Unauthorized, InvalidKey);
            Assert.Equal("Bearer", answer.WwwAuthenticate);
        }
    }

    [Fact]
    public async Task A_revoked_key_is_refused_on_the_next_request()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        await org.Http.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK);

        Assert.True(await app.Services.GetRequiredService<ApiKeys>().RevokeAsync(org.KeyId));

        var viaBearer = await org.Http.GetRawAsync($"/api/v1/sources/{id}/");
        viaBearer.AssertExactly(HttpStatusCode.Unauthorized, InvalidKey);
        Assert.Equal("Bearer", viaBearer.WwwAuthenticate);

        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Add("X-API-Key", org.Key);
        var viaHeader = await client.SendAsync("PATCH", $"/api/v1/sources/{id}/update-config/", """{"port": 1}""");
        viaHeader.AssertExactly(HttpStatusCode.Unauthorized, InvalidKey);
        Assert.Equal("Bearer", viaHeader.WwwAuthenticate);
    }

    [Fact]
    public async Task Both_ways_of_sending_the_key_see_the_same_organization()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Add("X-API-Key", org.Key);

        var viaHeader = await client.GetRawAsync("/api/v1/sources/");
        var viaBearer = await org.Http.GetRawAsync("/api/v1/sources/");

        viaHeader.AssertStatus(HttpStatusCode.OK);
        Assert.Equal(viaBearer.Body, viaHeader.Body);
        Assert.Contains($"\"id\":{id},", viaHeader.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_bearer_scheme_name_is_case_insensitive()
    {
        var org = await app.NewOrganizationAsync();
        using var client = app.CreateClient();
        Assert.True(client.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "bearer " + org.Key));

        (await client.GetRawAsync("/api/v1/sources/")).AssertStatus(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("/healthz")]
    [InlineData("/readyz")]
    public async Task Health_routes_need_no_key(string path)
    {
        using var client = app.CreateClient();

        var answer = await client.GetRawAsync(path);

        answer.AssertStatus(HttpStatusCode.OK);
        Assert.Null(answer.WwwAuthenticate);
    }

    [Fact]
    public async Task Health_routes_ignore_a_bad_key()
    {
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "cvn_nope");

        (await client.GetRawAsync("/healthz")).AssertStatus(HttpStatusCode.OK);
        (await client.GetRawAsync("/readyz")).AssertStatus(HttpStatusCode.OK);
    }

    public static TheoryData<string, string, string?> Routes()
    {
        var data = new TheoryData<string, string, string?>();
        foreach (var (method, url, body, _) in Wire.AllRoutes())
        {
            data.Add(method, url, body);
        }

        return data;
    }
}
