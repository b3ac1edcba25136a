using System.Net;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Sources;

/// <summary>
/// Section 1 and 2: an id that is not the caller's live source answers the one 404 body, byte for
/// byte, whatever the reason, so ids leak nothing across organizations.
/// </summary>
public sealed class TenancyTests(CaravanApp app)
{
    public static TheoryData<string, string, string?> IdRoutes() => new()
    {
        { "GET", "/api/v1/sources/{id}/", null },
        { "PUT", "/api/v1/sources/{id}/", """{"account_name": "Mine now"}""" },
        { "PATCH", "/api/v1/sources/{id}/", """{"account_name": "Mine now"}""" },
        { "DELETE", "/api/v1/sources/{id}/", null },
        { "PATCH", "/api/v1/sources/{id}/update-config/", """{"password": "stolen", "hostname": "evil.example.com"}""" },
        { "GET", "/api/v1/sources/{id}", null },
        { "PATCH", "/api/v1/sources/{id}/update-config", """{"port": 1}""" },
        { "GET", "/api/v1/sources/{id}/revisions/", null },
        { "GET", "/api/v1/sources/{id}/revisions", null },
    };

    public static TheoryData<string, string, string?, string> IdRoutesWithBadIds()
    {
        var data = new TheoryData<string, string, string?, string>();
        foreach (var id in new[] { "0", "-1", "abc", "1.5", "99999999999999999999", "1e3", "%20", "0x10" })
        {
            foreach (var row in IdRoutes())
            {
                var (method, url, body) = row.Data;
                data.Add(method, url, body, id);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(IdRoutes))]
    public async Task Another_organizations_source_answers_exactly_like_a_missing_one_and_is_unchanged(string method, string url, string? body)
    {
        var owner = await app.NewOrganizationAsync();
        var stranger = await app.NewOrganizationAsync();
        var id = await owner.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);
        var missing = await NeverUsedIdAsync(stranger);

        var theirs = await stranger.Http.SendAsync(method, url.WithId(id), body);
        var nothing = await stranger.Http.SendAsync(method, url.WithId(missing), body);

        theirs.AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        Assert.Equal(nothing, theirs);
        Assert.Equal(before, await app.StoredSourceAsync(id));
        await owner.Http.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("PUT", "{}")]
    [InlineData("PUT", """{"account_name": ""}""")]
    [InlineData("PATCH", """{"hostname": "x"}""")]
    public async Task Another_organizations_source_is_404_even_when_the_body_is_invalid(string method, string body)
    {
        var owner = await app.NewOrganizationAsync();
        var stranger = await app.NewOrganizationAsync();
        var id = await owner.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);

        var answer = await stranger.Http.SendAsync(method, $"/api/v1/sources/{id}/", body);

        answer.AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task Another_organizations_source_is_404_on_update_config_even_when_the_body_is_invalid()
    {
        var owner = await app.NewOrganizationAsync();
        var stranger = await app.NewOrganizationAsync();
        var id = await owner.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredSourceAsync(id);

        var answer = await stranger.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/update-config/", """{"port": 70000, "host": "x"}""");

        answer.AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task A_deleted_source_of_another_organization_answers_the_same_404()
    {
        var owner = await app.NewOrganizationAsync();
        var stranger = await app.NewOrganizationAsync();
        var id = await owner.Http.CreateSourceAsync(Wire.Postgres);
        await owner.Http.DeleteAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent);

        (await stranger.Http.GetRawAsync($"/api/v1/sources/{id}/")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        (await owner.Http.GetRawAsync($"/api/v1/sources/{id}/")).AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
    }

    [Theory]
    [MemberData(nameof(IdRoutesWithBadIds))]
    public async Task An_id_that_is_not_a_positive_integer_is_not_found(string method, string url, string? body, string id)
    {
        var org = await app.NewOrganizationAsync();
        await org.Http.CreateSourceAsync(Wire.Postgres);

        var answer = await org.Http.SendAsync(method, url.Replace("{id}", id, StringComparison.Ordinal), body);

        answer.AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        Assert.Equal(1, await org.CountAsync());
    }

    [Theory]
    [MemberData(nameof(IdRoutes))]
    public async Task A_deleted_id_is_not_found(string method, string url, string? body)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        await org.Http.DeleteAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent);
        var deleted = await app.StoredSourceAsync(id);

        var answer = await org.Http.SendAsync(method, url.WithId(id), body);

        answer.AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        Assert.Equal(deleted, await app.StoredSourceAsync(id));
    }

    /// <summary>An id above every id handed out so far (ids are never reused).</summary>
    private static async Task<long> NeverUsedIdAsync(OrgClient org)
    {
        var probe = await org.Http.CreateSourceAsync(Wire.Postgres);
        await org.Http.DeleteAsync(new Uri($"/api/v1/sources/{probe}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent);
        return probe + 1_000_000_000L;
    }
}
