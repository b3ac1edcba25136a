using System.Net;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;
using Caravan.Api.Tests.Query;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// The file routes through HTTP (contract 9.2): the upload answers once every file is stored, the
/// source converts in the background, its configuration lists the files and their states, and
/// every refusal answers the contract's shape and leaves nothing behind.
/// </summary>
public sealed class FileRouteTests(CaravanApp app)
{
    private const string Csv = "name,city,amount\n\"Smith, John\",Zürich,10\n\"Ödön\",\"Kraków, PL\",32\nplain,São Paulo,100\n";

    [Fact]
    public async Task An_upload_creates_a_source_that_is_ready_once_its_file_is_converted()
    {
        var org = await app.NewOrganizationAsync();
        using var form = FileKit.Form("Sales data", ("Sales 2026.csv", FileKit.Utf8(Csv)));
        var id = (await org.Http.UploadAsync(form).Expect(HttpStatusCode.OK))["id"]!.GetValue<long>();

        var files = await org.Http.ReadyFilesAsync(id);
        var file = Assert.Single(files)!;
        Assert.Equal("Sales 2026.csv", file["filename"]!.GetValue<string>());
        Assert.Equal("sales_2026", file["table"]!.GetValue<string>());
        Assert.Equal(FileKit.Utf8(Csv).Length, file["bytes"]!.GetValue<long>());
        Assert.Equal(3, file["rows"]!.GetValue<long>());
        Assert.Null(file["error"]);

        var source = await org.Http.GetSourceAsync(id);
        Assert.Equal("FILE", source["type"]!.GetValue<string>());
        Assert.Equal("Sales data", source["account_name"]!.GetValue<string>());
        Assert.True(source["is_fully_configured"]!.GetValue<bool>());

        var answer = await org.Http.QueryAsync(id, "SELECT count(*), sum(amount) FROM sales_2026 WHERE name = 'Smith, John' OR city = 'Kraków, PL' OR city = 'São Paulo'", HttpStatusCode.OK);
        Assert.Equal("[[3,142]]", answer["rows"]!.ToJsonString());
    }

    [Fact]
    public async Task A_source_without_a_name_takes_its_first_files_name()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.UploadFilesAsync(("q1.csv", FileKit.Utf8("a\n1\n")), ("q2.csv", FileKit.Utf8("a\n2\n")));
        Assert.Equal("q1.csv", (await org.Http.GetSourceAsync(id))["account_name"]!.GetValue<string>());
        var tables = (await org.Http.ReadyFilesAsync(id)).Select(f => f!["table"]!.GetValue<string>()).Order().ToList();
        Assert.Equal(["q1", "q2"], tables);
    }

    [Fact]
    public async Task Two_files_with_one_table_name_in_one_upload_both_stay()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.UploadFilesAsync(("data.csv", FileKit.Utf8("a\n1\n")), ("Data.tsv", FileKit.Utf8("a\tb\n2\t3\n")));
        var tables = (await org.Http.ReadyFilesAsync(id)).Select(f => f!["table"]!.GetValue<string>()).Order().ToList();
        Assert.Equal(["data", "data_2"], tables);
    }

    [Fact]
    public async Task Adding_files_adds_tables_and_a_file_of_the_same_name_replaces_its_table()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.UploadFilesAsync(("sales.csv", FileKit.Utf8("amount\n1\n2\n")));
        await org.Http.ReadyFilesAsync(id);

        using (var more = FileKit.Form(null, ("sales.csv", FileKit.Utf8("amount\n10\n20\n30\n")), ("costs.csv", FileKit.Utf8("amount\n5\n"))))
        {
            Assert.Equal(id, (await org.Http.UploadAsync(more, FileKit.FilesUrl(id)).Expect(HttpStatusCode.OK))["id"]!.GetValue<long>());
        }

        var files = await org.Http.ReadyFilesAsync(id);
        Assert.Equal(["costs", "sales"], files.Select(f => f!["table"]!.GetValue<string>()).Order().ToList());
        Assert.Equal("[[60]]", (await org.Http.QueryAsync(id, "SELECT sum(amount) FROM sales", HttpStatusCode.OK))["rows"]!.ToJsonString());
        Assert.Equal("[[5]]", (await org.Http.QueryAsync(id, "SELECT sum(amount) FROM costs", HttpStatusCode.OK))["rows"]!.ToJsonString());
        Assert.True((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
    }

    [Fact]
    public async Task While_a_replacement_converts_queries_and_the_tools_still_see_the_old_file_and_a_source_with_none_converted_says_so()
    {
        await using var own = new OwnCaravan();
        var org = await own.NewOrganizationAsync();
        org.Http.Timeout = TimeSpan.FromMinutes(5);
        var id = await org.Http.UploadFilesAsync(("sales.csv", FileKit.Utf8("amount\n1\n2\n")));
        await org.Http.ReadyFilesAsync(id);

        // One conversion runs at a time: a large file of another source, uploaded first, holds the replacement back.
        var blocker = await FileStreamingTests.UploadGeneratedAsync(org.Http, 150L << 20, "blocker.csv");
        using (var replacement = FileKit.Form(null, ("sales.csv", FileKit.Utf8("amount\n10\n20\n30\n"))))
        {
            await org.Http.UploadAsync(replacement, FileKit.FilesUrl(id)).Expect(HttpStatusCode.OK);
        }

        var during = await org.Http.QueryAsync(id, "SELECT sum(amount) FROM sales", HttpStatusCode.OK);
        var nothingYet = await org.Http.QueryAsync(blocker.Id, "SELECT count(*) FROM blocker", HttpStatusCode.Conflict);
        await using (var mcp = await McpKit.ConnectAsync(own, org.Key))
        {
            var tool = (await mcp.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "SELECT sum(amount) AS total FROM sales" })).Ok();
            Assert.Equal(3, tool.GetProperty("rows")[0][0].GetInt64());
            (await mcp.CallAsync("list_schemas", new() { ["source_id"] = id })).Ok();
            var (code, message) = (await mcp.CallAsync("run_query", new() { ["source_id"] = blocker.Id, ["sql"] = "SELECT 1" })).Error();
            Assert.Equal("not_configured", code);
            Assert.StartsWith($"Source {blocker.Id} cannot be queried yet: No file of this source is converted yet", message, StringComparison.Ordinal);
        }

        // All of that ran while neither file was converted yet (else the test proved nothing: make the blocker larger).
        async Task<List<string>> Statuses(long source) =>
            [.. (await org.Http.GetAsync(new Uri(SourceRoutes.Url(source, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK))["config"]!["files"]!
                .AsArray().Select(f => f!["status"]!.GetValue<string>()).Order()];
        Assert.Equal(["pending", "ready"], await Statuses(id));
        Assert.Equal(["pending"], await Statuses(blocker.Id));
        Assert.Equal("[[3]]", during["rows"]!.ToJsonString());
        Assert.Equal("not_configured", nothingYet["code"]!.GetValue<string>());
        Assert.Equal($"No file of this source is converted yet: config.files of GET /api/v1/sources/{blocker.Id}/config/ shows each file's status and error.",
            nothingYet["detail"]!.GetValue<string>());
        Assert.False((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());

        await org.Http.ReadyFilesAsync(id, TimeSpan.FromMinutes(5));
        Assert.Equal("[[60]]", (await org.Http.QueryAsync(id, "SELECT sum(amount) FROM sales", HttpStatusCode.OK))["rows"]!.ToJsonString());
        Assert.True((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
        await org.Http.ReadyFilesAsync(blocker.Id, TimeSpan.FromMinutes(5));
        Assert.Equal($"[[{blocker.Count}]]", (await org.Http.QueryAsync(blocker.Id, "SELECT count(*) FROM blocker", HttpStatusCode.OK))["rows"]!.ToJsonString());
    }

    [Fact]
    public async Task A_file_Caravan_cannot_read_is_refused_by_name_and_nothing_is_kept()
    {
        await using var own = new OwnCaravan();
        var org = await own.NewOrganizationAsync();
        byte[] png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52];
        using var form = FileKit.Form(null, ("good.csv", FileKit.Utf8("a\n1\n")), ("picture.png", png));
        var refused = await org.Http.UploadAsync(form).Expect(HttpStatusCode.BadRequest);
        Assert.Contains("picture.png", refused["errors"]!["files"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(0, (await org.Http.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK))["count"]!.GetValue<int>());
        Assert.Empty(FileKit.StoredObjects(own));
    }

    [Fact]
    public async Task Bad_upload_bodies_are_refused_in_the_contracts_shapes()
    {
        var org = await app.NewOrganizationAsync();
        using (var none = new MultipartFormDataContent { { new StringContent("x"), "account_name" } })
        {
            var refused = await org.Http.UploadAsync(none).Expect(HttpStatusCode.BadRequest);
            Assert.NotNull(refused["errors"]!["files"]);
        }

        using (var other = FileKit.Form(null, ("a.csv", FileKit.Utf8("a\n1\n"))))
        {
            other.Add(new StringContent("x"), "color");
            var refused = await org.Http.UploadAsync(other).Expect(HttpStatusCode.BadRequest);
            Assert.NotNull(refused["errors"]!["color"]);
        }

        using (var text = new StringContent("hello"))
        {
            await org.Http.UploadAsync(text).Expect(HttpStatusCode.UnsupportedMediaType);
        }

        var urls = await org.Http.PostJsonAsync(FileKit.UploadUrl, """{"file_urls": [{"url": "ftp://example.com/a.csv", "filename": "a.csv"}, {"url": "https://example.com/b.csv"}, 3], "extra": 1}""")
            .Expect(HttpStatusCode.BadRequest);
        Assert.NotNull(urls["errors"]!["file_urls[0].url"]);
        Assert.NotNull(urls["errors"]!["file_urls[1].filename"]);
        Assert.NotNull(urls["errors"]!["file_urls[2]"]);
        Assert.NotNull(urls["errors"]!["extra"]);
        await org.Http.PostJsonAsync(FileKit.UploadUrl, """{"file_urls": []}""").Expect(HttpStatusCode.BadRequest);
        Assert.Equal(0, (await org.Http.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK))["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_URL_on_loopback_is_refused_by_default_on_every_route()
    {
        var org = await app.NewOrganizationAsync();
        var body = """{"file_urls": [{"url": "http://127.0.0.1:9/data.csv", "filename": "data.csv"}]}""";
        var refused = await org.Http.PostJsonAsync(FileKit.UploadUrl, body).Expect(HttpStatusCode.BadRequest);
        Assert.Contains("loopback", refused["errors"]!["file_urls[0].url"]![0]!.GetValue<string>(), StringComparison.OrdinalIgnoreCase);
        var unified = await org.Http.PostJsonAsync("/api/v1/sources/", """{"type": "FILE", "file_urls": [{"url": "http://localhost:9/data.csv", "filename": "data.csv"}]}""")
            .Expect(HttpStatusCode.BadRequest);
        Assert.NotNull(unified["errors"]!["file_urls[0].url"]);
        Assert.Equal(0, (await org.Http.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK))["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task FILE_sources_take_no_fields_and_are_not_created_from_fields()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.UploadFilesAsync(("a.csv", FileKit.Utf8("a\n1\n")));
        await org.Http.ReadyFilesAsync(id);
        var etag = (await org.Http.GetAsync(new Uri(SourceRoutes.Url(id), UriKind.Relative))).Headers.ETag;

        await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), "{}").Expect(HttpStatusCode.OK);
        Assert.Equal(etag, (await org.Http.GetAsync(new Uri(SourceRoutes.Url(id), UriKind.Relative))).Headers.ETag);
        var refused = await org.Http.PatchJsonAsync(SourceRoutes.Url(id, "update-config"), """{"hostname": "db.example.com"}""").Expect(HttpStatusCode.BadRequest);
        Assert.Equal("Not a valid field for FILE sources.", refused["errors"]!["hostname"]![0]!.GetValue<string>());
        Assert.True((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());

        var legacy = await org.Http.PostJsonAsync("/api/v1/sources/add/", """{"type": "FILE", "account_name": "x"}""").Expect(HttpStatusCode.BadRequest);
        Assert.NotNull(legacy["errors"]!["type"]);
        await org.Http.PostJsonAsync("/api/v1/sources/add/file/", "{}").Expect(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Another_organizations_source_takes_no_files_and_shows_none()
    {
        var owner = await app.NewOrganizationAsync();
        var other = await app.NewOrganizationAsync();
        var id = await owner.Http.UploadFilesAsync(("private.csv", FileKit.Utf8("secret\n1\n")));

        using (var form = FileKit.Form(null, ("x.csv", FileKit.Utf8("a\n1\n"))))
        {
            await other.Http.UploadAsync(form, FileKit.FilesUrl(id)).Expect(HttpStatusCode.NotFound);
        }

        await other.Http.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.NotFound);
        await other.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.NotFound);

        // A source of another type takes no files either.
        var postgres = await owner.Http.CreateSourceAsync("""{"type": "postgres", "hostname": "db.example.com", "username": "u", "password": "p", "database_name": "d"}""");
        using var onOther = FileKit.Form(null, ("x.csv", FileKit.Utf8("a\n1\n")));
        await owner.Http.UploadAsync(onOther, FileKit.FilesUrl(postgres)).Expect(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task The_test_discovery_and_describe_see_every_table_and_column()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.UploadFilesAsync(("people.csv", FileKit.Utf8("name,age\nann,31\nbob,42\n")), ("pets.tsv", FileKit.Utf8("pet\tlegs\ncat\t4\n")));
        await org.Http.ReadyFilesAsync(id);

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK);
        Assert.True(report["ok"]!.GetValue<bool>(), report.ToJsonString());
        Assert.Equal(["files", "connect", "query", "schemas"], report["steps"]!.AsArray().Select(s => s!["name"]!.GetValue<string>()).ToList());

        var discovery = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal("tables", discovery["kind"]!.GetValue<string>());
        var people = discovery["results"]!.AsArray().Single(t => t!["name"]!.GetValue<string>() == "people")!;
        Assert.Equal(["name", "age"], people["columns"]!.AsArray().Select(c => c!["name"]!.GetValue<string>()).ToList());
        Assert.Contains(discovery["results"]!.AsArray(), t => t!["name"]!.GetValue<string>() == "pets");
    }

    [Fact]
    public async Task Deleting_the_source_erases_its_files()
    {
        await using var own = new OwnCaravan();
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.UploadFilesAsync(("gone.csv", FileKit.Utf8("a\n1\n")));
        await org.Http.ReadyFilesAsync(id);
        Assert.Single(FileKit.StoredObjects(own));
        var config = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Single(config["config"]!["files"]!.AsArray());

        await org.Http.DeleteAsync(new Uri(SourceRoutes.Url(id), UriKind.Relative)).Expect(HttpStatusCode.NoContent);
        await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.NotFound);
        Assert.Empty(FileKit.StoredObjects(own));
    }
}
