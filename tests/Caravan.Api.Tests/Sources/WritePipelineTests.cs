using System.Net;
using Caravan.Api.Data;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Revisions;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Sources;

/// <summary>
/// A source's write sends the row's write and its revision together, and on PostgreSQL its commit
/// with them (Database.ExecuteLastAsync): the three still stand or fall together. The store is made
/// to refuse one source's revisions (a trigger), and every kind of write of that source must then
/// fail whole, on either store, without leaving a session of the pool in a broken transaction.
/// </summary>
public sealed class WritePipelineTests
{
    private const string Body = """{"type": "postgres", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""";

    [Fact]
    public async Task A_write_whose_revision_is_refused_stores_nothing_and_the_next_write_commits()
    {
        await using var app = new OwnCaravan();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Body);
        var other = await org.Http.CreateSourceAsync(Body);
        var before = await app.StoredSourceAsync(id);

        await RefuseRevisionsAsync(app, id);
        using (var patch = await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), """{"port": 6001}"""))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, patch.StatusCode);
        }

        using (var put = await org.Http.PutAsync(SourceRoutes.Url(id), JsonContent("""{"account_name": "Renamed"}""")))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, put.StatusCode);
        }

        using (var delete = await org.Http.DeleteAsync(SourceRoutes.Url(id)))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, delete.StatusCode);
        }

        Assert.Equal(before, await app.StoredSourceAsync(id));
        Assert.Single(await app.StoredRevisionsAsync(id));

        // Other sources' writes, on the sessions the failed ones went back to, commit as usual.
        for (var port = 7001; port <= 7010; port++)
        {
            using var patch = await org.Http.PatchJsonAsync(SourceRoutes.Url(other, "update-config"), $$"""{"port": {{port}}}""");
            Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        }

        Assert.Equal(7010, (await app.StoredSourceAsync(other)).Settings["port"]!.GetValue<int>());
        Assert.Equal(11, (await app.StoredRevisionsAsync(other)).Count);

        await AllowRevisionsAsync(app);
        using (var patch = await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), """{"port": 6002}"""))
        {
            Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        }

        var after = await app.StoredSourceAsync(id);
        Assert.Equal(6002, after.Settings["port"]!.GetValue<int>());
        Assert.Equal(before.Version + 1, after.Version);
        Assert.Equal(2, (await app.StoredRevisionsAsync(id)).Count);
    }

    private static StringContent JsonContent(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

    private static Task RefuseRevisionsAsync(CaravanApp app, long id) => ExecuteAsync(app, TestStore.IsPostgres
        ? $$"""
            CREATE FUNCTION test_refuse_revision() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.source_id = {{id}} THEN RAISE EXCEPTION 'revision refused by the test'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_refuse_revision BEFORE INSERT ON source_revisions FOR EACH ROW EXECUTE FUNCTION test_refuse_revision();
            """
        : $"CREATE TRIGGER test_refuse_revision BEFORE INSERT ON source_revisions WHEN NEW.source_id = {id} BEGIN SELECT RAISE(ABORT, 'revision refused by the test'); END");

    private static Task AllowRevisionsAsync(CaravanApp app) => ExecuteAsync(app, "DROP TRIGGER test_refuse_revision" + (TestStore.IsPostgres ? " ON source_revisions" : string.Empty));

    private static async Task ExecuteAsync(CaravanApp app, string sql)
    {
        await using var connection = await app.Services.GetRequiredService<Database>().OpenAsync();
        await using var command = connection.Command(sql);
        await command.ExecuteNonQueryAsync();
    }
}
