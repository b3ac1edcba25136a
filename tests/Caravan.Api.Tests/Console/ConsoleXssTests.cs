using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Files;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Caravan.Api.Tests.Console;

/// <summary>
/// Markup in anything a source holds or a database answers is shown as text by the console, never
/// run: names, user names, database names, selected schemas, the schema names a real PostgreSQL
/// lists, the names of a FILE source's files, the history's values. Each payload, if it ran, would
/// count itself in <c>window.__xss</c>.
/// </summary>
public sealed class ConsoleXssTests(ConsoleBrowser browser) : IClassFixture<ConsoleBrowser>
{
    private static readonly string[] Payloads =
    [
        "<img src=x onerror=\"window.__xss=(window.__xss||0)+1\">",
        "\"><svg onload=\"window.__xss=(window.__xss||0)+1\">",
        "</script><script>window.__xss=(window.__xss||0)+1</script>",
        "<iframe srcdoc=\"<script>parent.__xss=(parent.__xss||0)+1</script>\"></iframe>",
    ];

    [Fact]
    public async Task Markup_in_stored_fields_schema_names_file_names_and_history_is_shown_as_text_and_never_runs()
    {
        Assert.SkipWhen(ConsoleBrowser.Missing, ConsoleBrowser.NoChromium);
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        var schema = Payloads[0];
        await Pg.ExecuteAsync($"CREATE SCHEMA \"{schema.Replace("\"", "\"\"", StringComparison.Ordinal)}\"; GRANT USAGE ON SCHEMA \"{schema.Replace("\"", "\"\"", StringComparison.Ordinal)}\" TO {db.Role}", db.Database);
        var key = await browser.NewKeyAsync();
        using var api = browser.Client(key);
        var id = await api.CreateSourceAsync(db.Body(body =>
        {
            body["account_name"] = Payloads[1];
            body["selected_schemas"] = new JsonArray(Payloads[2], schema);
        }));
        // A second, unreachable source whose name, user and database name carry markup, renamed once for the history.
        var other = await api.CreateSourceAsync(new JsonObject
        {
            ["type"] = "mysql", ["account_name"] = Payloads[2], ["hostname"] = "127.0.0.1", ["port"] = Loopback.ClosedPort(),
            ["username"] = Payloads[0], ["password"] = Unique.Secret("pw-"), ["database_name"] = Payloads[3],
        }.ToJsonString());
        await api.PatchJsonAsync(SourceRoutes.Url(other), new JsonObject { ["account_name"] = Payloads[1] + " renamed" }.ToJsonString()).Expect(HttpStatusCode.OK);
        // A FILE source whose name and file name carry markup (a file name has no quotes or slashes).
        const string fileName = "<img src=x onerror=window.__xss=(window.__xss||0)+1>.csv";
        long files;
        using (var form = FileKit.Form(Payloads[3], (fileName, FileKit.Utf8("a,b\n1,2\n"))))
        {
            files = (await api.UploadAsync(form).Expect(HttpStatusCode.OK))["id"]!.GetValue<long>();
        }

        await api.ReadyFilesAsync(files);

        await using var tab = await ConsoleTab.SignedInAsync(browser, key);
        var page = tab.Page;
        await Expect(page.Locator("body")).ToContainTextAsync(Payloads[1]);

        foreach (var source in new[] { id, other, files })
        {
            foreach (var view in new[] { "settings", "test", "schemas", "history" })
            {
                await page.GotoAsync($"/console/#/sources/{source}/{view}");
                await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
                if (view == "test")
                {
                    await page.Locator("#run-test").ClickAsync();
                    await Expect(page.Locator("#test-summary")).Not.ToBeEmptyAsync();
                }

                await AssertNothingRanAsync(page, $"{source}/{view}");
            }
        }

        // The markup reached the page as text: the schema PostgreSQL listed, and the stored names.
        await page.GotoAsync($"/console/#/sources/{id}/schemas");
        await Expect(page.Locator("body")).ToContainTextAsync(schema);
        await page.GotoAsync($"/console/#/sources/{other}/settings");
        await Expect(page.Locator("#field-username")).ToHaveValueAsync(Payloads[0]);
        await Expect(page.Locator("#field-database_name")).ToHaveValueAsync(Payloads[3]);
        await page.GotoAsync($"/console/#/sources/{other}/history");
        await Expect(page.Locator("body")).ToContainTextAsync(Payloads[2]);
        await page.GotoAsync($"/console/#/sources/{files}/settings");
        await Expect(page.Locator("#files tr .file")).ToHaveTextAsync(fileName);
        await Expect(page.Locator("h1")).ToHaveTextAsync(Payloads[3]);
        await page.GotoAsync("/console/#/sources");
        await Expect(page.Locator("body")).ToContainTextAsync(Payloads[1] + " renamed");
        await AssertNothingRanAsync(page, "list");
        Assert.Equal(0, await page.Locator("img[src=x], svg[onload], iframe[srcdoc]").CountAsync());
    }

    private static async Task AssertNothingRanAsync(IPage page, string where)
    {
        var ran = await page.EvaluateAsync<int>("() => window.__xss || 0");
        Assert.True(ran == 0, $"A payload ran on {where}.");
    }

    private static ILocatorAssertions Expect(ILocator locator) => Assertions.Expect(locator);
}
