using System.Net;
using System.Net.Http.Headers;
using Caravan.Api.Data;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Revisions;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Sources;

/// <summary>
/// Group commit on the SQLite store (Data/GroupCommit.cs): concurrent writes share one transaction,
/// yet each request is answered as if it ran alone. The committer is held until the test's requests
/// are all queued, so they land in one batch for certain; each test has its own Caravan, so no
/// other test's write joins the batch.
/// </summary>
public sealed class GroupCommitTests
{
    private const string Body = """{"type": "postgres", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""";

    [Fact]
    public async Task A_412_and_a_400_next_to_successes_in_one_batch_change_only_their_own_answers()
    {
        await using var app = new OwnCaravan();
        var writes = Writes(app);
        var org = await app.NewOrganizationAsync();
        long[] ids = [await org.Http.CreateSourceAsync(Body), await org.Http.CreateSourceAsync(Body), await org.Http.CreateSourceAsync(Body), await org.Http.CreateSourceAsync(Body)];
        var staleTag = await TagAsync(org, ids[1]);
        await org.Http.PatchJsonAsync(SourceRoutes.Url(ids[1], "update-config"), """{"username": "moved-on"}""").Expect(HttpStatusCode.OK);
        var before = await Task.WhenAll(ids.Select(app.StoredSourceAsync));
        var batches = writes.Batches;

        writes.HoldUntilQueued(4);
        var answers = await Task.WhenAll(
            Patch(org, ids[0], """{"port": 6001}"""),
            Patch(org, ids[1], """{"port": 6002}""", staleTag),
            Patch(org, ids[2], """{"port": 70000}"""),
            Patch(org, ids[3], """{"port": 6004}"""));

        Assert.Equal(batches + 1, writes.Batches);
        Assert.Equal(
            [HttpStatusCode.OK, HttpStatusCode.PreconditionFailed, HttpStatusCode.BadRequest, HttpStatusCode.OK],
            answers.Select(a => a.Status));
        Assert.Contains("current_etag", answers[1].Body, StringComparison.Ordinal);
        Assert.Contains("port", answers[2].Body, StringComparison.Ordinal);
        var after = await Task.WhenAll(ids.Select(app.StoredSourceAsync));
        Assert.Equal(6001, after[0].Settings["port"]!.GetValue<int>());
        Assert.Equal(before[1], after[1]);
        Assert.Equal(before[2], after[2]);
        Assert.Equal(6004, after[3].Settings["port"]!.GetValue<int>());
        Assert.Equal([before[0].Version + 1, before[3].Version + 1], [after[0].Version, after[3].Version]);
        Assert.Equal(answers[0].ETag, await TagAsync(org, ids[0]));
        var revisions = await Task.WhenAll(ids.Select(async id => (await app.StoredRevisionsAsync(id)).Count));
        Assert.Equal([2, 2, 1, 2], revisions);
    }

    [Fact]
    public async Task Two_updates_of_one_source_in_one_batch_keep_their_order_and_if_match_sees_the_first()
    {
        await using var app = new OwnCaravan();
        var writes = Writes(app);
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body);
        var tag = await TagAsync(org, id);
        var version = (await app.StoredSourceAsync(id)).Version;
        var batches = writes.Batches;

        writes.HoldUntilQueued(3);
        var first = Patch(org, id, """{"port": 1111}""", tag);
        await QueuedAsync(writes, 1);
        var second = Patch(org, id, """{"port": 2222}""");
        await QueuedAsync(writes, 2);
        var third = Patch(org, id, """{"port": 3333}""", tag);
        var answers = await Task.WhenAll(first, second, third);

        Assert.Equal(batches + 1, writes.Batches);
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.PreconditionFailed], answers.Select(a => a.Status));
        var stored = await app.StoredSourceAsync(id);
        Assert.Equal(2222, stored.Settings["port"]!.GetValue<int>());
        Assert.Equal(version + 2, stored.Version);
        Assert.NotEqual(answers[0].ETag, answers[1].ETag);
        Assert.Equal(answers[1].ETag, await TagAsync(org, id));
        Assert.Equal(answers[1].ETag, System.Text.Json.Nodes.JsonNode.Parse(answers[2].Body)!["current_etag"]!.GetValue<string>());
        var revisions = await app.StoredRevisionsAsync(id);
        Assert.Equal([1L, 2L, 3L], revisions.Select(r => r.Number));
        Assert.Equal("""{"port":{"old":null,"new":1111}}""", revisions[1].Changes);
        Assert.Equal("""{"port":{"old":1111,"new":2222}}""", revisions[2].Changes);
    }

    [Fact]
    public async Task A_failing_commit_fails_every_request_of_its_batch_with_a_5xx_and_stores_none()
    {
        await using var app = new OwnCaravan();
        var writes = Writes(app);
        var org = await app.NewOrganizationAsync();
        var ids = new[] { await org.Http.CreateSourceAsync(Body), await org.Http.CreateSourceAsync(Body) };
        var before = await Task.WhenAll(ids.Select(app.StoredSourceAsync));
        var listed = (await org.Http.GetAsync("/api/v1/sources/").Expect(HttpStatusCode.OK))["count"]!.GetValue<long>();

        writes.HoldUntilQueued(4);
        writes.FailNextCommit();
        var answers = await Task.WhenAll(
            Patch(org, ids[0], """{"port": 6001}"""),
            Send(org, HttpMethod.Put, SourceRoutes.Url(ids[1]), """{"account_name": "Renamed"}"""),
            Send(org, HttpMethod.Post, "/api/v1/sources/", Body),
            Send(org, HttpMethod.Delete, SourceRoutes.Url(ids[1]), null));

        Assert.All(answers, a => Assert.Equal(HttpStatusCode.InternalServerError, a.Status));
        Assert.All(answers, a => Assert.DoesNotContain("Injected", a.Body, StringComparison.Ordinal));
        Assert.Equal(before, await Task.WhenAll(ids.Select(app.StoredSourceAsync)));
        Assert.Equal(listed, (await org.Http.GetAsync("/api/v1/sources/").Expect(HttpStatusCode.OK))["count"]!.GetValue<long>());
        Assert.All(await Task.WhenAll(ids.Select(app.StoredRevisionsAsync)), r => Assert.Single(r));
        Assert.DoesNotContain(app.Logs.AuditEvents(ids[0]), e => e.Message.Contains("update", StringComparison.Ordinal));

        // The committer goes on: the next write commits.
        Assert.Equal(HttpStatusCode.OK, (await Patch(org, ids[0], """{"port": 6009}""")).Status);
        Assert.Equal(6009, (await app.StoredSourceAsync(ids[0])).Settings["port"]!.GetValue<int>());
    }

    private static GroupCommit Writes(CaravanApp app)
    {
        Assert.SkipWhen(TestStore.IsPostgres, "Group commit is the SQLite store's; on PostgreSQL each write has its own transaction.");
        return app.Services.GetRequiredService<Database>().SqliteWrites!;
    }

    private static async Task QueuedAsync(GroupCommit writes, int count)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (writes.Queued < count)
        {
            await Task.Delay(5, timeout.Token);
        }
    }

    private sealed record Answer(HttpStatusCode Status, string Body, string? ETag);

    private static Task<Answer> Patch(OrgClient org, long id, string json, string? ifMatch = null) =>
        Send(org, HttpMethod.Patch, SourceRoutes.Url(id, "update-config"), json, ifMatch);

    private static async Task<Answer> Send(OrgClient org, HttpMethod method, string url, string? json, string? ifMatch = null)
    {
        using var request = new HttpRequestMessage(method, url);
        if (json is not null)
        {
            request.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        }

        if (ifMatch is not null)
        {
            request.Headers.IfMatch.Add(EntityTagHeaderValue.Parse(ifMatch));
        }

        using var response = await org.Http.SendAsync(request);
        return new Answer(response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers.ETag?.ToString());
    }

    private static async Task<string> TagAsync(OrgClient org, long id)
    {
        using var response = await org.Http.GetAsync(SourceRoutes.Url(id));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return response.Headers.ETag!.ToString();
    }
}
