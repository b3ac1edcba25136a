using System.Net;
using System.Text;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Sources;

/// <summary>Optimistic concurrency: strong ETags and If-Match on every write route (contract section 6).</summary>
public sealed class EntityTagTests(CaravanApp app)
{
    private const string Body = """{"type": "mysql", "hostname": "db.example.com", "username": "u", "password": "p1", "database_name": "d"}""";

    public static TheoryData<string, string, string> Writes => new()
    {
        { "PATCH", "/update-config/", """{"port": 3307}""" },
        { "PUT", "/", """{"account_name": "Renamed"}""" },
        { "PATCH", "/", """{"account_name": "Renamed"}""" },
        { "DELETE", "/", "" },
    };

    [Fact]
    public async Task Get_answers_a_strong_tag_that_changes_on_every_write()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body);

        var first = await TagAsync(org, id);
        var again = await TagAsync(org, id);
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"port": 3307}""").Expect(HttpStatusCode.OK);
        var second = await TagAsync(org, id);

        Assert.Matches("^\"[^\"]+\"$", first);
        Assert.Equal(first, again);
        Assert.NotEqual(first, second);
    }

    [Theory]
    [MemberData(nameof(Writes))]
    public async Task A_stale_tag_is_refused_with_412_and_nothing_is_written(string method, string suffix, string json)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body);
        var stale = await TagAsync(org, id);
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"username": "someone-else"}""").Expect(HttpStatusCode.OK);
        var current = await TagAsync(org, id);
        var before = await app.StoredSourceAsync(id);

        var body = await Send(org, method, $"/api/v1/sources/{id}{suffix}", json, stale).Expect(HttpStatusCode.PreconditionFailed);

        Assert.Equal($$"""{"detail":"The source was changed since you read it.","current_etag":{{JsonText.Quote(current)}}}""", body.Compact());
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Theory]
    [MemberData(nameof(Writes))]
    public async Task The_current_tag_lets_the_write_through(string method, string suffix, string json)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body);
        var current = await TagAsync(org, id);

        using var response = await Send(org, method, $"/api/v1/sources/{id}{suffix}", json, current);

        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}");
        if (method != "DELETE")
        {
            var answered = response.Headers.ETag?.ToString();
            Assert.NotNull(answered);
            Assert.NotEqual(current, answered);
            Assert.Equal(answered, await TagAsync(org, id));
        }
    }

    [Theory]
    [InlineData("*")]
    [InlineData("\"nope\", CURRENT")]
    public async Task A_wildcard_or_a_list_containing_the_current_tag_matches(string ifMatch)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body);
        var current = await TagAsync(org, id);

        await Send(org, "PATCH", $"/api/v1/sources/{id}/update-config/", """{"port": 3310}""", ifMatch.Replace("CURRENT", current, StringComparison.Ordinal))
            .Expect(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_weak_tag_never_matches()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body);
        var current = await TagAsync(org, id);

        await Send(org, "PATCH", $"/api/v1/sources/{id}/update-config/", """{"port": 3310}""", "W/" + current)
            .Expect(HttpStatusCode.PreconditionFailed);
    }

    [Fact]
    public async Task Not_found_outranks_a_stale_tag()
    {
        var org = await app.NewOrganizationAsync();

        await Send(org, "PATCH", "/api/v1/sources/999999999/update-config/", "{}", "\"1-1\"").Expect(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Without_if_match_writes_merge_as_before()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body);

        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"port": 3311}""").Expect(HttpStatusCode.OK);
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"username": "other"}""").Expect(HttpStatusCode.OK);

        var stored = await app.StoredSourceAsync(id);
        Assert.Equal(3311, stored.Settings["port"]!.GetValue<int>());
        Assert.Equal("other", stored.Settings["username"]!.GetValue<string>());
    }

    private static async Task<string> TagAsync(OrgClient org, long id)
    {
        using var response = await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return response.Headers.ETag!.ToString();
    }

    private static Task<HttpResponseMessage> Send(OrgClient org, string method, string url, string json, string ifMatch)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (json.Length > 0)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        return org.Http.SendAsync(request);
    }
}
