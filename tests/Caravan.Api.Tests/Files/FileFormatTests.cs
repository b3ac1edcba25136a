using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// Every format through the routes (docs/files.md): files built here as their own tools write them
/// are uploaded, converted, and then queried, discovered and tested like any database, with exact
/// results; names follow the documented rules, and what Caravan cannot read is refused by name.
/// </summary>
public sealed class FileFormatTests(CaravanApp app)
{
    [Fact]
    public async Task Every_format_is_queried_with_exact_counts_sums_and_cells()
    {
        var org = await app.NewOrganizationAsync();
        var (id, _) = await FileSamples.UploadAllAsync(org.Http);

        foreach (var (sql, expected) in FileSamples.Checks())
        {
            var answer = await org.Http.QueryAsync(id, sql, HttpStatusCode.OK);
            Assert.True(expected.SequenceEqual(FileSamples.Numbers(answer)), $"{sql}: {answer["rows"]!.ToJsonString()}");
        }

        var cities = await org.Http.QueryAsync(id, "SELECT city, note FROM cities WHERE id <= 4 ORDER BY id", HttpStatusCode.OK);
        Assert.Equal(FileSamples.SpecialCities.Select(c => new[] { c.City, c.Note }), Texts(cities));
        var firsts = await org.Http.QueryAsync(id, """
            SELECT (SELECT "user" FROM clicks WHERE id = 1), (SELECT label FROM metrics WHERE id = 1),
                   (SELECT Region FROM budget_q1_plan WHERE Units = 1 AND Amount = 0.5), (SELECT name FROM shop_customers WHERE id = 1)
            """, HttpStatusCode.OK);
        Assert.Equal(new[] { new[] { FileSamples.FirstUser, FileSamples.FirstLabel, "Zürich, CH", FileSamples.FirstCustomer } }, Texts(firsts));
        var notes = await org.Http.QueryAsync(id, "SELECT Topic, Text FROM budget_notes ORDER BY Topic", HttpStatusCode.OK);
        Assert.Equal(FileSamples.Notes.OrderBy(n => n[0], StringComparer.Ordinal), Texts(notes));

        // Dates and timestamps come back as what was written, not shifted by a time zone.
        var times = await org.Http.QueryAsync(id, """
            SELECT (SELECT max(day) FROM metrics)::VARCHAR, (SELECT min(Month) FROM budget_q1_plan)::VARCHAR, (SELECT max(Month) FROM budget_q1_plan)::VARCHAR
            """, HttpStatusCode.OK);
        Assert.Equal("2026-12-31|2026-01-01 00:00:00|2026-03-31 00:00:00", string.Join('|', Texts(times).Single()));
    }

    [Fact]
    public async Task Discovery_the_configuration_and_the_test_see_every_table_and_column_with_its_type()
    {
        var org = await app.NewOrganizationAsync();
        var (id, files) = await FileSamples.UploadAllAsync(org.Http);

        var discovery = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal("tables", discovery["kind"]!.GetValue<string>());
        Assert.Equal(
            FileSamples.Tables.Select(t => $"{t.Key}: {string.Join(", ", t.Value.Columns)}"),
            discovery["results"]!.AsArray().Select(t =>
                $"{t!["name"]!.GetValue<string>()}: {string.Join(", ", t["columns"]!.AsArray().Select(c => $"{c!["name"]!.GetValue<string>()} {c["type"]!.GetValue<string>()}"))}"));
        Assert.All(discovery["results"]!.AsArray(), t => Assert.False(t!["selected"]!.GetValue<bool>()));

        // One entry per table, each with its file, its exact rows and the file's size.
        var sizes = FileSamples.All.ToDictionary(f => f.Name, f => (long)f.Content.Length);
        Assert.Equal(
            FileSamples.Tables.Select(t => $"{t.Key} {t.Value.File} {t.Value.Rows} {sizes[t.Value.File]} ready"),
            files.Select(f => $"{f!["table"]} {f["filename"]} {f["rows"]} {f["bytes"]} {f["status"]}").Order(StringComparer.Ordinal));
        Assert.All(files, f => Assert.Null(f!["error"]));
        Assert.True((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK);
        Assert.True(report["ok"]!.GetValue<bool>(), report.ToJsonString());
        Assert.Equal("files:ok connect:ok query:ok schemas:ok", Reports.Outline(report));
    }

    [Fact]
    public async Task A_file_that_fails_to_convert_is_named_by_the_test_and_keeps_the_source_incomplete()
    {
        var org = await app.NewOrganizationAsync();
        byte[] broken = [0x50, 0x4B, 0x03, 0x04, .. FileKit.Utf8("Zebulonville"), .. new byte[2000]];
        var id = await org.Http.UploadFilesAsync(("good.csv", FileKit.Utf8("n\n1\n2\n")), ("broken.xlsx", broken));

        var files = await org.Http.SettledFilesAsync(id);
        var failed = Assert.Single(files, f => f!["status"]!.GetValue<string>() == "failed")!;
        Assert.Equal("broken.xlsx", failed["filename"]!.GetValue<string>());
        Assert.Equal("broken", failed["table"]!.GetValue<string>());
        Assert.Equal("broken.xlsx: not a readable Excel (.xlsx) workbook.", failed["error"]!.GetValue<string>());
        Assert.Equal("ready", Assert.Single(files, f => f!["filename"]!.GetValue<string>() == "good.csv")!["status"]!.GetValue<string>());
        Assert.False((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK);
        Assert.False(report["ok"]!.GetValue<bool>());
        Assert.Equal("files:failed connect:skipped query:skipped schemas:skipped", Reports.Outline(report));
        Assert.Equal(FailureCodes.FileNotReady, Reports.Code(report, "files"));
        Assert.Equal("broken.xlsx could not be converted: broken.xlsx: not a readable Excel (.xlsx) workbook.",
            Reports.Step(report, "files")["message"]!.GetValue<string>());
        Assert.DoesNotContain("Zebulon", report.ToJsonString(), StringComparison.Ordinal);

        // What did convert answers meanwhile.
        Assert.Equal("[[3]]", (await org.Http.QueryAsync(id, "SELECT sum(n) FROM good", HttpStatusCode.OK))["rows"]!.ToJsonString());

        // Uploading the file again, readable this time, replaces the failed one and completes the source.
        using (var again = FileKit.Form(null, ("broken.xlsx", TestFiles.Bytes(path => TestFiles.Xlsx(path, ("Sheet", [["a"], [1.0]]))))))
        {
            await org.Http.UploadAsync(again, FileKit.FilesUrl(id)).Expect(HttpStatusCode.OK);
        }

        Assert.Equal(["broken_sheet", "good"], (await org.Http.ReadyFilesAsync(id)).Select(f => f!["table"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.True((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
        Assert.True((await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK))["ok"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Table_names_follow_the_documented_rules()
    {
        var org = await app.NewOrganizationAsync();
        var workbook = TestFiles.Bytes(path => TestFiles.Xlsx(path, ("Q1 Sales", [["a"], [1.0]]), ("Résumé.2024", [["a"], [2.0]])));
        var database = TestFiles.Bytes(path => TestFiles.Sqlite(path, """
            CREATE TABLE "Order Items" (a INTEGER); INSERT INTO "Order Items" VALUES (3);
            CREATE TABLE "2024" (a INTEGER); INSERT INTO "2024" VALUES (4);
            """));
        var id = await org.Http.UploadFilesAsync(
            ("Sales 2026 (final).CSV", FileKit.Utf8("a\n5\n")),
            ("sales_2026-FINAL.tsv", FileKit.Utf8("a\tb\n6\tx\n")),
            ("Café Crème.csv", FileKit.Utf8("a\n7\n")),
            ("2025 report.json", FileKit.Utf8("""[{"a": 8}]""")),
            (new string('x', 80) + ".ndjson", FileKit.Utf8("""{"a": 9}""")),
            ("Team Book.xlsx", workbook),
            ("My Shop.db", database));

        var files = await org.Http.ReadyFilesAsync(id);
        string[] expected =
            [
                "Café Crème.csv cafe_creme", "My Shop.db my_shop_2024", "My Shop.db my_shop_order_items",
                "Sales 2026 (final).CSV sales_2026_final", "Team Book.xlsx team_book_q1_sales", "Team Book.xlsx team_book_resume_2024",
                "sales_2026-FINAL.tsv sales_2026_final_2", "2025 report.json t_2025_report", $"{new string('x', 80)}.ndjson {new string('x', 63)}",
            ];
        Assert.Equal(expected.Order(StringComparer.Ordinal), files.Select(f => $"{f!["filename"]} {f["table"]}").Order(StringComparer.Ordinal));
        var sums = await org.Http.QueryAsync(id, $"""
            SELECT (SELECT a FROM sales_2026_final) + 10 * (SELECT a FROM sales_2026_final_2) + 100 * (SELECT a FROM cafe_creme)
                 + 1000 * (SELECT a FROM t_2025_report) + 10000 * (SELECT a FROM {new string('x', 63)})
                 + 100000 * (SELECT a FROM team_book_q1_sales) + 1000000 * (SELECT a FROM team_book_resume_2024)
                 + 10000000 * (SELECT a FROM my_shop_order_items) + 100000000 * (SELECT a FROM my_shop_2024)
            """, HttpStatusCode.OK);
        Assert.Equal("[[432198765]]", sums["rows"]!.ToJsonString());
    }

    [Fact]
    public async Task A_binary_files_content_decides_its_format_whatever_its_name_says()
    {
        var org = await app.NewOrganizationAsync();
        var parquet = TestFiles.Bytes(path => TestFiles.Parquet(path, "SELECT i AS n FROM range(10) t(i)"));
        var sqlite = TestFiles.Bytes(path => TestFiles.Sqlite(path, "CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (40), (2);"));
        var id = await org.Http.UploadFilesAsync(("export.csv", parquet), ("data.json", sqlite));

        Assert.Equal(["data_t 2", "export 10"], (await org.Http.ReadyFilesAsync(id)).Select(f => $"{f!["table"]} {f["rows"]}").Order(StringComparer.Ordinal));
        var answer = await org.Http.QueryAsync(id, "SELECT (SELECT sum(n) FROM export), (SELECT sum(n) FROM data_t)", HttpStatusCode.OK);
        Assert.Equal("[[45,42]]", answer["rows"]!.ToJsonString());
    }

    [Fact]
    public async Task A_table_name_another_file_of_the_source_gives_fails_that_file_and_says_so()
    {
        var org = await app.NewOrganizationAsync();
        var workbook = TestFiles.Bytes(path => TestFiles.Xlsx(path, ("q1", [["amount"], [10.0]]), ("q2", [["amount"], [20.0]])));
        var id = await org.Http.UploadFilesAsync(("sales.xlsx", workbook));
        await org.Http.ReadyFilesAsync(id);

        using (var clash = FileKit.Form(null, ("sales_q1.csv", FileKit.Utf8("amount\n99\n"))))
        {
            await org.Http.UploadAsync(clash, FileKit.FilesUrl(id)).Expect(HttpStatusCode.OK);
        }

        var failed = Assert.Single(await org.Http.SettledFilesAsync(id), f => f!["filename"]!.GetValue<string>() == "sales_q1.csv")!;
        Assert.Equal("failed", failed["status"]!.GetValue<string>());
        Assert.Equal("sales_q1.csv gives a table named sales_q1, which sales.xlsx already gives; rename one of the files.", failed["error"]!.GetValue<string>());
        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK);
        Assert.Equal(FailureCodes.FileNotReady, Reports.Code(report, "files"));
        Assert.Contains("sales_q1.csv could not be converted", Reports.Step(report, "files")["message"]!.GetValue<string>(), StringComparison.Ordinal);

        // The workbook's tables are untouched.
        var discovery = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(["sales_q1", "sales_q2"], discovery["results"]!.AsArray().Select(t => t!["name"]!.GetValue<string>()));
    }

    public static TheoryData<string, byte[]> Unreadable { get; } = new()
    {
        { "picture.png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52] },
        { "empty.csv", [] },
        { "archive.zip", [0x50, 0x4B, 0x03, 0x04, 0x14, 0, 0, 0, .. FileKit.Utf8("readme.txt")] },
        { "noise.json", [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 7919 % 256))] },
    };

    [Theory]
    [MemberData(nameof(Unreadable))]
    public async Task A_file_Caravan_cannot_read_added_to_a_source_is_refused_by_name_and_changes_nothing(string name, byte[] content)
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.UploadFilesAsync(("kept.csv", FileKit.Utf8("n\n1\n")));
        var before = await org.Http.ReadyFilesAsync(id);
        var stored = await app.StoredSourceAsync(id);
        Assert.Equal(["kept.csv ready"], await app.StoredFileRowsAsync(id));

        using var form = FileKit.Form(null, ("more.csv", FileKit.Utf8("n\n2\n")), (name, content));
        var refused = await org.Http.UploadAsync(form, FileKit.FilesUrl(id)).Expect(HttpStatusCode.BadRequest);

        Assert.StartsWith(name + ": not a file Caravan can read.", refused["errors"]!["files"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(before.ToJsonString(), (await org.Http.SettledFilesAsync(id)).ToJsonString());
        Assert.Equal(stored, await app.StoredSourceAsync(id));
        Assert.Equal(["kept.csv ready"], await app.StoredFileRowsAsync(id));
        Assert.Equal("[[1]]", (await org.Http.QueryAsync(id, "SELECT count(*) FROM kept", HttpStatusCode.OK))["rows"]!.ToJsonString());
    }

    /// <summary>The rows of an answer whose cells are all text.</summary>
    private static List<string[]> Texts(JsonNode answer) =>
        [.. answer["rows"]!.AsArray().Select(r => r!.AsArray().Select(c => c!.GetValue<string>()).ToArray())];
}
