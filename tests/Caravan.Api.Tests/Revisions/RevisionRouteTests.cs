using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Data;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Revisions;

/// <summary>
/// <c>GET /api/v1/sources/{id}/revisions/</c> as a route: pagination exactly like the list, newest
/// first, tenancy, and a revision written if and only if its change was.
/// </summary>
public sealed class RevisionRouteTests(CaravanApp app)
{
    [Fact]
    public async Task Revisions_are_paginated_like_the_list_newest_first()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        for (var port = 1; port <= 11; port++)
        {
            await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", $$"""{"port": {{port}}}""").Expect(HttpStatusCode.OK);
        }

        var url = $"http://localhost/api/v1/sources/{id}/revisions/";
        var page1 = await org.ListAsync(id, "?page_size=5");
        Assert.Equal(["count", "next", "previous", "results"], page1.AsObject().Select(p => p.Key));
        Assert.Equal(12, page1["count"]!.GetValue<long>());
        Assert.Equal([12L, 11, 10, 9, 8], Numbers(page1));
        AssertPageUrl(page1["next"], url, new() { ["page"] = "2", ["page_size"] = "5" });
        Assert.Null(page1["previous"]);

        var page2 = await org.ListAsync(id, new Uri(page1["next"]!.GetValue<string>()).Query);
        Assert.Equal([7L, 6, 5, 4, 3], Numbers(page2));
        AssertPageUrl(page2["next"], url, new() { ["page"] = "3", ["page_size"] = "5" });
        AssertPageUrl(page2["previous"], url, new() { ["page_size"] = "5" });

        var page3 = await org.ListAsync(id, "?page=3&page_size=5");
        Assert.Equal([2L, 1], Numbers(page3));
        Assert.Null(page3["next"]);
        Assert.Equal(page3.Compact(), (await org.ListAsync(id, "?page=last&page_size=5")).Compact());

        // The eleventh update, as the newest: port 10 became 11.
        Assert.Equal("""{"port":{"old":10,"new":11}}""", page1["results"]![0]!["changes"]!.Compact());
        Assert.Equal("create", page3["results"]![1]!["action"]!.GetValue<string>());

        // Defaults and refusals, as on the list.
        Assert.Equal(12, Numbers(await org.ListAsync(id)).Count);
        Assert.Equal(12, Numbers(await org.ListAsync(id, "?page_size=0")).Count);
        Assert.Equal(12, Numbers(await org.ListAsync(id, "?page_size=abc")).Count);
        Assert.Equal(12, Numbers(await org.ListAsync(id, "?page_size=100000")).Count);
        foreach (var page in new[] { "4", "0", "-1", "abc", "1.5" })
        {
            (await org.Http.GetRawAsync($"/api/v1/sources/{id}/revisions/?page={page}&page_size=5"))
                .AssertExactly(HttpStatusCode.NotFound, Wire.InvalidPage);
        }

        // Without the trailing slash, the same revisions (the page links keep the path as it was asked).
        var withoutSlash = await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/revisions?page=3&page_size=5", UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(page3["results"]!.Compact(), withoutSlash["results"]!.Compact());
    }

    [Fact]
    public async Task Another_organizations_source_a_missing_one_and_a_deleted_one_answer_the_same_404()
    {
        var owner = await app.NewOrganizationAsync();
        var stranger = await app.NewOrganizationAsync();
        var id = await owner.Http.CreateSourceAsync(Wire.Postgres);
        var gone = await owner.Http.CreateSourceAsync(Wire.Postgres);
        await owner.Http.DeleteAsync(new Uri($"/api/v1/sources/{gone}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent);

        var theirs = await stranger.Http.GetRawAsync(RevisionKit.Url(id));
        var missing = await stranger.Http.GetRawAsync(RevisionKit.Url(gone + 1_000_000_000L));
        var deleted = await owner.Http.GetRawAsync(RevisionKit.Url(gone));
        var page = await stranger.Http.GetRawAsync(RevisionKit.Url(id) + "?page=99");

        theirs.AssertExactly(HttpStatusCode.NotFound, Wire.NotFound);
        Assert.Equal(missing, theirs);
        Assert.Equal(missing, deleted);
        Assert.Equal(missing, page);
        Assert.Equal(1, (await owner.ListAsync(id))["count"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_refused_update_writes_no_revision()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await app.StoredRevisionsAsync(id);

        (await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/update-config/", """{"port": 70000, "password": "Pw-refused"}""")).AssertStatus(HttpStatusCode.BadRequest);
        (await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/update-config/", """{"password": null}""")).AssertStatus(HttpStatusCode.BadRequest);
        (await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/update-config/", "{bad")).AssertStatus(HttpStatusCode.BadRequest);
        (await org.Http.SendAsync("PUT", $"/api/v1/sources/{id}/", """{"account_name": ""}""")).AssertStatus(HttpStatusCode.BadRequest);
        (await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/", """{"hostname": "other.example.com"}""")).AssertStatus(HttpStatusCode.BadRequest);
        (await org.Http.SendAsync("POST", "/api/v1/sources/", """{"type": "postgres", "hostname": "h"}""")).AssertStatus(HttpStatusCode.BadRequest);

        // A PATCH that sends no name changes nothing, so it is no revision either.
        (await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/", "{}")).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(before, await app.StoredRevisionsAsync(id));
        Assert.Equal(1, (await org.ListAsync(id))["count"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("PATCH", "/api/v1/sources/{id}/update-config/", """{"port": 6543}""")]
    [InlineData("PUT", "/api/v1/sources/{id}/", """{"account_name": "Renamed"}""")]
    [InlineData("PATCH", "/api/v1/sources/{id}/", """{"account_name": "Renamed"}""")]
    [InlineData("DELETE", "/api/v1/sources/{id}/", null)]
    public async Task A_stale_if_match_writes_no_revision(string method, string url, string? body)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        using var read = await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative));
        var staleTag = read.Headers.ETag!.ToString();
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"port": 5433}""").Expect(HttpStatusCode.OK);
        var before = await app.StoredRevisionsAsync(id);
        Assert.Equal(2, before.Count);

        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(url.WithId(id), UriKind.Relative));
        if (body is not null)
        {
            request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        }

        request.Headers.TryAddWithoutValidation("If-Match", staleTag);
        var answer = await org.Http.ExchangeAsync(request);

        answer.AssertStatus(HttpStatusCode.PreconditionFailed);
        Assert.Equal(before, await app.StoredRevisionsAsync(id));
        Assert.Equal(2, app.Logs.AuditEvents(id).Count);
    }

    [Fact]
    public async Task A_change_whose_revision_cannot_be_written_is_not_written_either()
    {
        await using var own = new OwnCaravan();
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var before = await own.StoredSourceAsync(id);
        await ExecuteAsync(own, "ALTER TABLE source_revisions RENAME TO source_revisions_away");

        (await org.Http.SendAsync("PATCH", $"/api/v1/sources/{id}/update-config/", """{"port": 6543, "password": "Pw-lost"}""")).AssertStatus(HttpStatusCode.InternalServerError);
        (await org.Http.SendAsync("PUT", $"/api/v1/sources/{id}/", """{"account_name": "Renamed"}""")).AssertStatus(HttpStatusCode.InternalServerError);
        (await org.Http.SendAsync("DELETE", $"/api/v1/sources/{id}/")).AssertStatus(HttpStatusCode.InternalServerError);
        (await org.Http.SendAsync("POST", "/api/v1/sources/", Wire.Postgres)).AssertStatus(HttpStatusCode.InternalServerError);

        Assert.Equal(before, await own.StoredSourceAsync(id));
        Assert.Equal(1, await org.CountAsync());
        Assert.Single(own.Logs.AuditEvents(id));

        await ExecuteAsync(own, "ALTER TABLE source_revisions_away RENAME TO source_revisions");
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"port": 6543}""").Expect(HttpStatusCode.OK);
        Assert.Equal([2L, 1], Numbers(await org.ListAsync(id)));
    }

    [Fact]
    public async Task Concurrent_changes_of_one_source_get_consecutive_numbers_and_each_its_own_changes()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        var ports = Enumerable.Range(1, 12).ToList();

        await Task.WhenAll(ports.Select(port =>
            org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", $$"""{"port": {{port}}}""").Expect(HttpStatusCode.OK)));

        var history = await org.ListAsync(id);
        Assert.Equal(Enumerable.Range(1, 13).Reverse().Select(n => (long)n), Numbers(history));

        // Replayed oldest first, each revision's "old" is the previous one's "new".
        JsonNode? previous = null;
        foreach (var revision in history["results"]!.AsArray().Reverse().Skip(1))
        {
            var port = revision!["changes"]!["port"]!;
            Assert.Equal(previous?.Compact(), port["old"]?.Compact());
            previous = port["new"];
        }

        Assert.Equal(ports.Order(), history["results"]!.AsArray().SkipLast(1).Select(r => r!["changes"]!["port"]!["new"]!.GetValue<int>()).Order());
    }

    private static List<long> Numbers(JsonNode page) => [.. page["results"]!.AsArray().Select(r => r!["number"]!.GetValue<long>())];

    private static void AssertPageUrl(JsonNode? actual, string path, Dictionary<string, string> query)
    {
        var uri = new Uri(actual!.GetValue<string>());
        Assert.Equal(path, uri.GetLeftPart(UriPartial.Path));
        var parsed = QueryHelpers.ParseQuery(uri.Query);
        Assert.Equal(query.OrderBy(q => q.Key, StringComparer.Ordinal), parsed.Select(p => KeyValuePair.Create(p.Key, p.Value.ToString())).OrderBy(q => q.Key, StringComparer.Ordinal));
    }

    private static async Task ExecuteAsync(CaravanApp app, string sql)
    {
        var database = app.Services.GetRequiredService<Database>();
        await using var connection = await database.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}
