using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Caravan.Api.Data;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Sources;

/// <summary>GET /api/v1/sources/: DRF page-number pagination over the caller's live sources.</summary>
public sealed class ListTests(CaravanApp app)
{
    private const string Legacy = """{"account_name": "Legacy", "type": "mysql"}""";

    [Fact]
    public async Task Lists_the_callers_sources_by_id_ascending_as_connection_objects()
    {
        var org = await app.NewOrganizationAsync();
        var ids = new List<long>();
        for (var i = 0; i < 4; i++)
        {
            ids.Add(await org.Http.CreateSourceAsync(Wire.Postgres));
        }

        var answer = await org.Http.GetRawAsync("/api/v1/sources/");

        answer.AssertStatus(HttpStatusCode.OK);
        Assert.Equal(Wire.JsonContentType, answer.ContentType);
        var body = answer.Json.AsObject();
        Assert.Equal(["count", "next", "previous", "results"], body.Select(p => p.Key));
        Assert.Equal(4, body["count"]!.GetValue<long>());
        Assert.Null(body["next"]);
        Assert.Null(body["previous"]);
        var results = body["results"]!.AsArray();
        Assert.Equal(ids.Order(), results.Select(r => r!["id"]!.GetValue<long>()));
        foreach (var result in results)
        {
            var id = result!["id"]!.GetValue<long>();
            var single = await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.OK);
            Assert.Equal(single.Compact(), result.Compact());
        }
    }

    [Fact]
    public async Task Count_and_results_leave_out_deleted_sources()
    {
        var org = await app.NewOrganizationAsync();
        var first = await org.Http.CreateSourceAsync(Wire.Postgres);
        var second = await org.Http.CreateSourceAsync(Wire.Postgres);
        var third = await org.Http.CreateSourceAsync(Wire.Postgres);

        await org.Http.DeleteAsync(new Uri($"/api/v1/sources/{second}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent);

        var body = await ListAsync(org, "/api/v1/sources/");
        Assert.Equal(2, body["count"]!.GetValue<long>());
        Assert.Equal([first, third], Ids(body));
    }

    [Fact]
    public async Task Never_shows_another_organizations_sources()
    {
        var mine = await app.NewOrganizationAsync();
        var theirs = await app.NewOrganizationAsync();
        var own = await mine.Http.CreateSourceAsync(Wire.Postgres);
        await theirs.Http.CreateSourceAsync(Wire.Postgres);
        await theirs.Http.CreateSourceAsync(Wire.Postgres);

        var body = await ListAsync(mine, "/api/v1/sources/?page_size=1000");

        Assert.Equal(1, body["count"]!.GetValue<long>());
        Assert.Equal([own], Ids(body));
    }

    [Fact]
    public async Task Page_size_defaults_to_50_and_a_non_numeric_one_is_ignored()
    {
        var org = await app.NewOrganizationAsync();
        var ids = await CreateManyAsync(org, 52);

        foreach (var query in new[] { string.Empty, "?page_size=abc", "?page_size=", "?page_size=0", "?page_size=-5", "?page_size=2.5" })
        {
            var page1 = await ListAsync(org, "/api/v1/sources/" + query);
            Assert.Equal(52, page1["count"]!.GetValue<long>());
            Assert.Equal(ids.Take(50), Ids(page1));
            Assert.NotNull(page1["next"]);

            var next = new Uri(page1["next"]!.GetValue<string>());
            var page2 = await ListAsync(org, next.PathAndQuery);
            Assert.Equal(ids.Skip(50), Ids(page2));
            Assert.Null(page2["next"]);
        }
    }

    [Fact]
    public async Task A_page_size_over_1000_behaves_like_1000()
    {
        var org = await app.NewOrganizationAsync();
        var ids = await CreateManyAsync(org, 3);

        foreach (var size in new[] { "1000", "1001", "5000", "2147483648", "99999999999999999999" })
        {
            var body = await ListAsync(org, $"/api/v1/sources/?page_size={size}");
            Assert.Equal(3, body["count"]!.GetValue<long>());
            Assert.Equal(ids, Ids(body));
            Assert.Null(body["next"]);
            Assert.Null(body["previous"]);
        }
    }

    [Fact]
    public async Task A_page_size_over_1000_is_clamped_to_1000_with_more_than_1000_sources()
    {
        var org = await app.NewOrganizationAsync();

        // 1001 rows written straight into the store: the route under test only reads them.
        await InsertSourcesAsync(org, 1001);

        var body = await ListAsync(org, "/api/v1/sources/?page_size=5000");

        Assert.Equal(1001, body["count"]!.GetValue<long>());
        Assert.Equal(1000, body["results"]!.AsArray().Count);
        var next = new Uri(body["next"]!.GetValue<string>());
        var query = QueryHelpers.ParseQuery(next.Query);
        Assert.Equal("2", query["page"].ToString());
        var page2 = await ListAsync(org, next.PathAndQuery);
        Assert.Single(page2["results"]!.AsArray());
        Assert.Null(page2["next"]);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("abc")]
    [InlineData("1.5")]
    [InlineData("3")]
    [InlineData("99999999999999999999")]
    [InlineData("9223372036854775807")]
    [InlineData("Last")]
    public async Task A_page_that_is_not_a_valid_page_number_is_invalid(string page)
    {
        var org = await app.NewOrganizationAsync();
        await CreateManyAsync(org, 3);

        var answer = await org.Http.GetRawAsync($"/api/v1/sources/?page_size=2&page={page}");

        answer.AssertExactly(HttpStatusCode.NotFound, Wire.InvalidPage);
    }

    [Fact]
    public async Task Page_last_is_the_last_page_as_in_DRF()
    {
        var org = await app.NewOrganizationAsync();
        var ids = await CreateManyAsync(org, 5);

        var body = await ListAsync(org, "/api/v1/sources/?page_size=2&page=last");

        Assert.Equal(5, body["count"]!.GetValue<long>());
        Assert.Equal([ids[4]], Ids(body));
        Assert.Null(body["next"]);
        AssertPageUrl(body["previous"], "http://localhost/api/v1/sources/", new() { ["page"] = "2", ["page_size"] = "2" });
        var empty = await app.NewOrganizationAsync();
        (await empty.Http.GetRawAsync("/api/v1/sources/?page=last")).AssertExactly(
            HttpStatusCode.OK, """{"count":0,"next":null,"previous":null,"results":[]}""");
    }

    [Fact]
    public async Task Page_1_of_an_empty_list_is_200_with_count_0_and_page_2_is_invalid()
    {
        var org = await app.NewOrganizationAsync();

        (await org.Http.GetRawAsync("/api/v1/sources/")).AssertExactly(
            HttpStatusCode.OK, """{"count":0,"next":null,"previous":null,"results":[]}""");
        (await org.Http.GetRawAsync("/api/v1/sources/?page=1")).AssertExactly(
            HttpStatusCode.OK, """{"count":0,"next":null,"previous":null,"results":[]}""");
        (await org.Http.GetRawAsync("/api/v1/sources/?page=2")).AssertExactly(HttpStatusCode.NotFound, Wire.InvalidPage);
    }

    [Fact]
    public async Task Next_and_previous_are_absolute_urls_and_null_at_the_ends()
    {
        var org = await app.NewOrganizationAsync();
        var ids = await CreateManyAsync(org, 5);

        var page1 = await ListAsync(org, "/api/v1/sources/?page_size=2");
        Assert.Equal(ids.Take(2), Ids(page1));
        AssertPageUrl(page1["next"], "http://localhost/api/v1/sources/", new() { ["page"] = "2", ["page_size"] = "2" });
        Assert.Null(page1["previous"]);

        var page2 = await ListAsync(org, "/api/v1/sources/?page=2&page_size=2");
        Assert.Equal(ids.Skip(2).Take(2), Ids(page2));
        AssertPageUrl(page2["next"], "http://localhost/api/v1/sources/", new() { ["page"] = "3", ["page_size"] = "2" });

        // As DRF: the link to the first page carries no page parameter at all.
        AssertPageUrl(page2["previous"], "http://localhost/api/v1/sources/", new() { ["page_size"] = "2" });

        var page3 = await ListAsync(org, "/api/v1/sources/?page=3&page_size=2");
        Assert.Equal(ids.Skip(4), Ids(page3));
        Assert.Null(page3["next"]);
        AssertPageUrl(page3["previous"], "http://localhost/api/v1/sources/", new() { ["page"] = "2", ["page_size"] = "2" });
        Assert.Equal(5, page3["count"]!.GetValue<long>());
    }

    [Fact]
    public async Task Next_and_previous_are_built_from_the_requests_scheme_and_host()
    {
        var org = await app.NewOrganizationAsync();
        await CreateManyAsync(org, 3);
        using var client = app.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("https://caravan.example:8443") });
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", org.Key);

        var body = await client.GetAsync(new Uri("/api/v1/sources/?page=2&page_size=1", UriKind.Relative)).Expect(HttpStatusCode.OK);

        AssertPageUrl(body["next"], "https://caravan.example:8443/api/v1/sources/", new() { ["page"] = "3", ["page_size"] = "1" });
        AssertPageUrl(body["previous"], "https://caravan.example:8443/api/v1/sources/", new() { ["page_size"] = "1" });
    }

    [Fact]
    public async Task Next_and_previous_keep_the_other_query_parameters()
    {
        var org = await app.NewOrganizationAsync();
        await CreateManyAsync(org, 3);

        // search (an extension since the console) filters; every source here is named "Legacy".
        var body = await ListAsync(org, "/api/v1/sources/?page_size=1&page=2&q=ware%20house&search=legacy&format=json");

        AssertPageUrl(body["next"], "http://localhost/api/v1/sources/",
            new() { ["page"] = "3", ["page_size"] = "1", ["q"] = "ware house", ["search"] = "legacy", ["format"] = "json" });
        AssertPageUrl(body["previous"], "http://localhost/api/v1/sources/",
            new() { ["page_size"] = "1", ["q"] = "ware house", ["search"] = "legacy", ["format"] = "json" });
    }

    [Fact]
    public async Task Works_without_the_trailing_slash()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Wire.Postgres);
        using var client = Wire.NoRedirectClient(app, org);

        var answer = await client.GetRawAsync("/api/v1/sources?page=1&page_size=10");

        answer.AssertStatus(HttpStatusCode.OK);
        Assert.Equal([id], Ids(answer.Json));
    }

    [Fact]
    public async Task Every_page_matches_the_live_sources_by_id_across_id_ranges_organizations_and_deletes()
    {
        // Two organizations' rows interleaved over several 1,024-id ranges (the list's seek index),
        // some deleted through the API and one removed from the store outright: every page of every
        // size must be exactly the organization's live sources in id order, and count their number.
        var mine = await app.NewOrganizationAsync();
        var theirs = await app.NewOrganizationAsync();
        for (var round = 0; round < 3; round++)
        {
            await InsertSourcesAsync(mine, 700);
            await InsertSourcesAsync(theirs, 500);
        }

        // One statement that inserts many rows at once (a bulk load): counted like single creates.
        await using (var connection = await app.Services.GetRequiredService<Database>().OpenAsync())
        await using (var copy = connection.CreateCommand())
        {
            copy.CommandText = $"""
                INSERT INTO sources (organization_id, type, account_name, settings, secrets, is_fully_configured, version, created_at, updated_at)
                SELECT organization_id, type, account_name, settings, secrets, is_fully_configured, version, created_at, updated_at
                FROM sources WHERE organization_id = (SELECT id FROM organizations WHERE name = '{mine.Organization}') ORDER BY id
                """;
            Assert.Equal(2100, await copy.ExecuteNonQueryAsync());
        }

        var all = await AllIdsAsync(mine, 1000);
        Assert.Equal(4200, all.Count);
        foreach (var id in all.Where((_, i) => i % 7 == 3 || i < 5 || i >= all.Count - 5))
        {
            await mine.Http.DeleteAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent);
        }

        await using (var connection = await app.Services.GetRequiredService<Database>().OpenAsync())
        await using (var delete = connection.CreateCommand())
        {
            delete.CommandText = $"DELETE FROM sources WHERE id = {all[1000]}";
            Assert.Equal(1, await delete.ExecuteNonQueryAsync());
        }

        var expected = all.Where((id, i) => !(i % 7 == 3 || i < 5 || i >= all.Count - 5) && id != all[1000]).ToList();
        foreach (var pageSize in new[] { 1000, 333, 50 })
        {
            Assert.Equal(expected, await AllIdsAsync(mine, pageSize));
        }

        var theirIds = await AllIdsAsync(theirs, 1000);
        Assert.Equal(1500, theirIds.Count);
        Assert.Empty(theirIds.Intersect(all));
    }

    [Fact]
    public async Task The_migration_that_adds_the_seek_index_counts_the_sources_already_stored()
    {
        var directory = CaravanApp.NewDataDirectory();
        var settings = TestStore.IsPostgres
            ? new Dictionary<string, string?> { ["Caravan:Storage:Provider"] = "Postgres", ["ConnectionStrings:Caravan"] = TestStore.CreateEmptyPostgresDatabase() }
            : TestStore.NewStoreSettings(directory);
        var options = Microsoft.Extensions.Options.Options.Create(new StorageOptions
        {
            Provider = TestStore.Provider,
            ConnectionString = settings["ConnectionStrings:Caravan"]!,
        });

        // A store at version 1 with sources in it, as an older Caravan left it.
        await using (var database = new Database(options))
        await using (var connection = await database.OpenAsync())
        {
            var first = Migrator.For(TestStore.Provider)[0];
            foreach (var sql in new[]
            {
                "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                first.Sql,
                $"INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, '{first.Name}', 0)",
                "INSERT INTO organizations (name, created_at) VALUES ('old', 0)",
            })
            {
                await using var command = connection.CreateCommand();
                command.CommandText = sql;
                await command.ExecuteNonQueryAsync();
            }

            for (var i = 0; i < 1500; i++)
            {
                await using var insert = connection.CreateCommand();
                insert.CommandText = $$"""
                    INSERT INTO sources (organization_id, type, account_name, settings, secrets, is_fully_configured, version, created_at, updated_at, deleted_at)
                    VALUES (1, 'MYSQL', 'Old {{i}}', '{}', '{}', {{(TestStore.IsPostgres ? "false" : "0")}}, 1, 0, 0, {{(i % 4 == 0 ? "1" : "NULL")}})
                    """;
                await insert.ExecuteNonQueryAsync();
            }

            // What `migrate` does (a PostgreSQL store is not migrated by start-up).
            await new Migrator(database, Microsoft.Extensions.Logging.Abstractions.NullLogger<Migrator>.Instance).MigrateAsync();
        }

        await using var upgraded = new OwnCaravan(directory, settings);
        var org = await upgraded.NewOrganizationAsync("old");

        var ids = await AllIdsAsync(org, 1000);
        Assert.Equal(Enumerable.Range(1, 1500).Where(i => (i - 1) % 4 != 0).Select(i => (long)i), ids);
    }

    private static async Task<List<long>> AllIdsAsync(OrgClient org, int pageSize)
    {
        var ids = new List<long>();
        for (var page = 1; ; page++)
        {
            var body = await ListAsync(org, $"/api/v1/sources/?page={page}&page_size={pageSize}");
            ids.AddRange(Ids(body));
            if (body["next"] is null)
            {
                Assert.Equal(ids.Count, body["count"]!.GetValue<long>());
                return ids;
            }
        }
    }

    private static void AssertPageUrl(JsonNode? link, string expectedBase, Dictionary<string, string> expectedQuery)
    {
        Assert.NotNull(link);
        var text = link.GetValue<string>();
        var uri = new Uri(text, UriKind.Absolute);
        Assert.Equal(expectedBase, uri.GetLeftPart(UriPartial.Path));
        var query = QueryHelpers.ParseQuery(uri.Query).ToDictionary(q => q.Key, q => q.Value.ToString(), StringComparer.Ordinal);
        Assert.Equal(expectedQuery.OrderBy(q => q.Key, StringComparer.Ordinal), query.OrderBy(q => q.Key, StringComparer.Ordinal));
    }

    private static async Task<JsonNode> ListAsync(OrgClient org, string url) =>
        await org.Http.GetAsync(new Uri(url, UriKind.Relative)).Expect(HttpStatusCode.OK);

    private static long[] Ids(JsonNode body) => [.. body["results"]!.AsArray().Select(r => r!["id"]!.GetValue<long>())];

    private static async Task<List<long>> CreateManyAsync(OrgClient org, int count)
    {
        var ids = new List<long>(count);
        for (var i = 0; i < count; i++)
        {
            var created = await org.Http.PostJsonAsync("/api/v1/sources/add/", Legacy).Expect(HttpStatusCode.OK);
            ids.Add(created["id"]!.GetValue<long>());
        }

        return ids;
    }

    private async Task InsertSourcesAsync(OrgClient org, int count)
    {
        var database = app.Services.GetRequiredService<Database>();
        await using var connection = await database.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        long organizationId;
        await using (var find = connection.Command("SELECT id FROM organizations WHERE name = @name", transaction).With("@name", org.Organization))
        {
            organizationId = Convert.ToInt64(await find.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (var i = 0; i < count; i++)
        {
            await using var insert = connection.Command("""
                INSERT INTO sources (organization_id, type, account_name, settings, secrets, is_fully_configured, version, created_at, updated_at)
                VALUES (@org, 'MYSQL', @name, '{}', '{}', @configured, 1, @now, @now)
                """, transaction).With("@org", organizationId).With("@name", $"Bulk {i}").With("@configured", false).With("@now", now);
            await insert.ExecuteNonQueryAsync();
        }

        await transaction.CommitAsync();
    }
}
