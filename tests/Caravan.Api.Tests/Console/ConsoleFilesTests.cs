using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Caravan.Api.Tests.Files;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;
using Microsoft.Playwright;

namespace Caravan.Api.Tests.Console;

/// <summary>
/// FILE sources in the console, in a real browser against a real Caravan: files dropped on the
/// drop zone and chosen with the picker go up in one request whose progress the page shows, each
/// file's conversion is followed to its end, the tables appear with their columns, files are added
/// to an existing source from its page, and refused or failed uploads say why and create nothing.
/// </summary>
public sealed class ConsoleFilesTests(ConsoleBrowser browser) : IClassFixture<ConsoleBrowser>
{
    // Snapshots of the upload's progress and of each file's row, taken on every change of the page
    // (the add page is left as soon as the upload is answered, too quickly to be looked at).
    private const string Recorder = """
        () => {
          window.__seen = { progress: [], rows: [] };
          const snapshot = () => {
            const bar = document.getElementById('upload-progress');
            const text = document.getElementById('upload-progress-text');
            if (bar && text?.textContent) window.__seen.progress.push({ value: bar.value, max: bar.max, text: text.textContent });
            for (const row of document.querySelectorAll('#upload-list tr[data-file], #files tr[data-file]')) {
              window.__seen.rows.push(`${row.closest('table').id}|${row.dataset.file}|${row.dataset.status}`);
            }
          };
          new MutationObserver(snapshot).observe(document.getElementById('main'), { subtree: true, childList: true, attributes: true, characterData: true });
        }
        """;

    [Fact]
    public async Task Two_files_dropped_and_picked_upload_with_progress_are_followed_until_ready_and_their_tables_are_listed()
    {
        Assert.SkipWhen(ConsoleBrowser.Missing, ConsoleBrowser.NoChromium);
        var key = await browser.NewKeyAsync();
        using var api = browser.Client(key);
        var (csv, amounts) = SalesCsv(80_000);
        var ndjson = "{\"kind\":\"login\",\"user_id\":7}\n{\"kind\":\"logout\",\"user_id\":7}\n{\"kind\":\"login\",\"user_id\":9}\n";
        await using var tab = await ConsoleTab.SignedInAsync(browser, key);
        var page = tab.Page;

        await page.Locator("#nav-add").ClickAsync();
        await page.Locator("#type").SelectOptionAsync("FILE");
        await Expect(page.Locator("#drop-zone")).ToBeVisibleAsync();
        await Expect(page.Locator("#test-unsaved")).ToBeHiddenAsync();
        await Expect(page.Locator("#save")).ToHaveTextAsync("Upload and add source");
        await page.Locator("#field-account_name").FillAsync("Sales and events");

        // One file dropped on the drop zone, as a browser delivers a dragged file, and one chosen with the picker.
        await page.Locator("#drop-zone").EvaluateAsync("""
            (zone, file) => {
              const data = new DataTransfer();
              data.items.add(new File([file.text], file.name, { type: 'text/csv' }));
              zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
              zone.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
            }
            """, new { name = "sales.csv", text = csv });
        await page.Locator("#upload-files").SetInputFilesAsync(new FilePayload { Name = "events.ndjson", MimeType = "application/x-ndjson", Buffer = Encoding.UTF8.GetBytes(ndjson) });
        await Expect(page.Locator("#upload-list tr[data-status=chosen]")).ToHaveCountAsync(2);
        await Expect(page.Locator("#upload-list tr[data-file='sales.csv'] .size")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^\d+(\.\d)? MiB$"));
        await tab.ShotAsync("files-add");

        // The upload is held to 1 MiB/s, as over a real network, so the browser reports its progress as it goes.
        await page.EvaluateAsync(Recorder);
        var devtools = await page.Context.NewCDPSessionAsync(page);
        await devtools.SendAsync("Network.enable");
        await devtools.SendAsync("Network.emulateNetworkConditions", new Dictionary<string, object>
        {
            ["offline"] = false, ["latency"] = 0, ["downloadThroughput"] = -1, ["uploadThroughput"] = 1024 * 1024,
        });
        await page.Locator("#save").ClickAsync();

        await Expect(page.Locator("#flash")).ToHaveTextAsync("Uploaded 2 files. Caravan converts each into a table; this page follows them.");
        await Expect(page.Locator("h1")).ToHaveTextAsync("Sales and events");
        await devtools.DetachAsync();
        var id = long.Parse(page.Url.Split('/')[^1], CultureInfo.InvariantCulture);

        // The progress was drawn as the bytes went, and reached every byte of the request (both
        // files and the multipart framing around them).
        var seen = await page.EvaluateAsync<JsonElement>("() => window.__seen");
        var progress = seen.GetProperty("progress").EnumerateArray()
            .Select(p => (Value: p.GetProperty("value").GetDouble(), Max: p.GetProperty("max").GetDouble(), Text: p.GetProperty("text").GetString()!)).ToList();
        Assert.StartsWith("0 bytes of 1.6 MiB sent (0%)", progress[0].Text, StringComparison.Ordinal);
        Assert.Contains(progress, p => p.Value > 0 && p.Value < p.Max);
        Assert.Equal(progress.Select(p => p.Value).Order(), progress.Select(p => p.Value));
        var last = progress[^1];
        Assert.Equal(last.Max, last.Value);
        Assert.True(last.Max > csv.Length + ndjson.Length, $"progress max {last.Max} is below the files' size");
        Assert.Equal("1.6 MiB of 1.6 MiB sent (100%)", last.Text);

        // Each file's row went through its states in order while the request went: the CSV, sent
        // first, was uploading while the NDJSON after it still waited.
        var rows = seen.GetProperty("rows").EnumerateArray().Select(r => r.GetString()!.Split('|')).ToList();
        string States(string table, string file) => string.Join(" ", rows.Where(r => r[0] == table && r[1] == file).Select(r => r[2]).Distinct());
        Assert.Equal("waiting uploading sent stored", States("upload-list", "sales.csv"));
        Assert.Matches("^waiting (uploading )?sent stored$", States("upload-list", "events.ndjson"));

        // The source page follows each file's conversion until it is ready, with its table and rows.
        var sales = page.Locator("#files tr[data-file='sales.csv']");
        var events = page.Locator("#files tr[data-file='events.ndjson']");
        await Expect(sales).ToHaveAttributeAsync("data-status", "ready", new() { Timeout = 90_000 });
        await Expect(events).ToHaveAttributeAsync("data-status", "ready", new() { Timeout = 90_000 });
        await Expect(sales.Locator(".table")).ToHaveTextAsync("sales");
        await Expect(sales.Locator(".rows")).ToHaveTextAsync(amounts.Count.ToString("N0", CultureInfo.GetCultureInfo("en-US")));
        await Expect(events.Locator(".table")).ToHaveTextAsync("events");
        await Expect(events.Locator(".rows")).ToHaveTextAsync("3");
        await Expect(page.Locator("#files-summary")).ToHaveTextAsync("Every file is converted: 2 tables, ready to query.");
        await Expect(page.Locator("#configured")).ToHaveTextAsync("configured");
        // Whatever the page caught of the conversion (pending, if it looked before the file was
        // converted) came before ready, and nothing failed.
        rows = [.. (await page.EvaluateAsync<string[]>("() => window.__seen.rows")).Select(r => r.Split('|'))];
        foreach (var file in new[] { "sales.csv", "events.ndjson" })
        {
            Assert.Matches("^(pending )?ready$", States("files", file));
        }

        await tab.ShotAsync("files-source");

        // What the page says is what Caravan stored: every byte of both files, queryable.
        var config = await api.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal([csv.Length, ndjson.Length], config["config"]!["files"]!.AsArray().Select(f => f!["bytes"]!.GetValue<int>()));
        var sums = await api.QueryAsync(id, "SELECT count(*), sum(amount) FROM sales", HttpStatusCode.OK);
        Assert.Equal($"[[{amounts.Count},{amounts.Sum()}]]", sums["rows"]!.ToJsonString());

        // The tables view lists both tables with their columns, and nothing to select or save.
        await page.Locator("#tab-link-schemas").ClickAsync();
        await Expect(page.Locator("#tab-link-schemas")).ToHaveTextAsync("Tables");
        await Expect(page.Locator("#tables-title")).ToHaveTextAsync("2 tables");
        await Expect(page.Locator("#tables details")).ToHaveCountAsync(2);
        foreach (var column in new[] { "region", "amount", "sold_on" })
        {
            await Expect(page.Locator($"#tables details[data-name=sales] tr[data-column={column}]")).ToHaveCountAsync(1);
        }

        await Expect(page.Locator("#tables details[data-name=sales] tr[data-column=region] td").Nth(1)).ToHaveTextAsync("VARCHAR");
        await Expect(page.Locator("#tables details[data-name=events] tr[data-column]")).ToHaveCountAsync(2);
        await Expect(page.Locator("#tables details[data-name=events] tr[data-column=user_id]")).ToBeVisibleAsync();
        await Expect(page.Locator("#schemas-form, input[type=checkbox]")).ToHaveCountAsync(0);
        await tab.ShotAsync("files-tables");

        await tab.AssertNoSecretAsync(key);
        Assert.DoesNotContain(tab.Urls, url => !url.StartsWith(browser.Address.ToString(), StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_FILE_sources_page_lists_its_files_adds_and_replaces_files_renames_it_and_offers_no_configuration_fields()
    {
        Assert.SkipWhen(ConsoleBrowser.Missing, ConsoleBrowser.NoChromium);
        var key = await browser.NewKeyAsync();
        using var api = browser.Client(key);
        var id = await api.UploadFilesAsync(("prices.csv", FileKit.Utf8("item,price\napple,3\npear,4\n")));
        await api.ReadyFilesAsync(id);
        await using var tab = await ConsoleTab.SignedInAsync(browser, key);
        var page = tab.Page;

        await page.GotoAsync($"/console/#/sources/{id}");
        await Expect(page.Locator("#tab-link-settings")).ToHaveTextAsync("Files");
        await Expect(page.Locator("#files tr[data-file='prices.csv']")).ToHaveAttributeAsync("data-status", "ready");
        await Expect(page.Locator("#files tr[data-file='prices.csv'] .rows")).ToHaveTextAsync("2");
        // Nothing to configure: the only field is the name, which update-config takes.
        await Expect(page.Locator("#edit-form input, #edit-form select, #edit-form textarea")).ToHaveCountAsync(1);
        await Expect(page.Locator("#edit-form #field-account_name")).ToHaveValueAsync("prices.csv");

        // A new version of prices.csv and a new file, through the same form.
        await page.Locator("#upload-files").SetInputFilesAsync(new[]
        {
            new FilePayload { Name = "prices.csv", MimeType = "text/csv", Buffer = FileKit.Utf8("item,price\napple,3\npear,4\nplum,5\n") },
            new FilePayload { Name = "stock.tsv", MimeType = "text/tab-separated-values", Buffer = FileKit.Utf8("item\tcount\napple\t10\n") },
        });
        await page.Locator("#upload").ClickAsync();
        await Expect(page.Locator("#upload-progress-text")).ToContainTextAsync("sent (100%)");
        await Expect(page.Locator("#upload-status")).ToHaveTextAsync("2 files stored. Caravan converts each into a table in the background.");
        await Expect(page.Locator("#upload-list tr[data-status=stored]")).ToHaveCountAsync(2);
        await Expect(page.Locator("#files tr[data-file='stock.tsv']")).ToHaveAttributeAsync("data-status", "ready", new() { Timeout = 60_000 });
        await Expect(page.Locator("#files tr[data-file='prices.csv']")).ToHaveCountAsync(1, new() { Timeout = 60_000 });
        await Expect(page.Locator("#files tr[data-file='prices.csv'] .rows")).ToHaveTextAsync("3");
        await Expect(page.Locator("#files-summary")).ToHaveTextAsync("Every file is converted: 2 tables, ready to query.");
        await tab.ShotAsync("files-added");

        // The conversions gave the source new versions; they are not someone else's change, so the rename goes through.
        await page.Locator("#edit-form #field-account_name").FillAsync("Prices and stock");
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#flash")).ToHaveTextAsync("Saved.");
        Assert.Equal("Prices and stock", (await api.GetSourceAsync(id))["account_name"]!.GetValue<string>());

        await page.Locator("#tab-link-history").ClickAsync();
        await Expect(page.Locator("#revisions > li").Nth(1)).ToContainTextAsync("Files");
        await Expect(page.Locator("#revisions > li").Nth(1)).ToContainTextAsync("added: prices.csv, stock.tsv");
        await tab.AssertNoSecretAsync(key);
    }

    [Fact]
    public async Task A_refused_a_cut_off_and_a_proxy_refused_upload_say_why_in_the_page_and_create_nothing()
    {
        Assert.SkipWhen(ConsoleBrowser.Missing, ConsoleBrowser.NoChromium);
        var key = await browser.NewKeyAsync();
        using var api = browser.Client(key);
        await using var tab = await ConsoleTab.SignedInAsync(browser, key);
        var page = tab.Page;
        await page.GotoAsync("/console/#/add?type=file");
        await Expect(page.Locator("#type")).ToHaveValueAsync("FILE");

        // Nothing chosen: said next to the drop zone, nothing sent.
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#field-files-error")).ToHaveTextAsync("Choose at least one file, or drop files on the box.");

        // A PNG (whose name is markup) beside a good CSV: Caravan refuses the upload, and the page says which file and why.
        const string image = "<img src=x onerror=window.__xss=1>.png";
        await page.Locator("#upload-files").SetInputFilesAsync(new[]
        {
            new FilePayload { Name = "good.csv", MimeType = "text/csv", Buffer = FileKit.Utf8("a,b\n1,2\n") },
            new FilePayload { Name = image, MimeType = "image/png", Buffer = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D] },
        });
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#field-files-error")).ToHaveTextAsync(
            $"{image}: not a file Caravan can read. Send CSV, TSV, Parquet, JSON or NDJSON, Excel (.xlsx, .xls) or SQLite (.sqlite, .sqlite3, .db) files.");
        await Expect(page.Locator("#upload-files")).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(page.Locator("#upload-errors")).ToHaveTextAsync("Invalid value for files.");
        await Expect(page.Locator($"#upload-list tr[data-status=refused]")).ToHaveCountAsync(1);
        await Expect(page.Locator($"#upload-list tr[data-status=refused] .file")).ToHaveTextAsync(image);
        await Expect(page.Locator("#upload-status")).ToHaveTextAsync("Nothing was stored.");
        Assert.Equal(0, await page.EvaluateAsync<int>("() => window.__xss || 0"));
        Assert.Equal(0, await page.Locator("img[src=x]").CountAsync());
        await tab.ShotAsync("files-refused");
        Assert.Equal(0, (await api.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK))["count"]!.GetValue<int>());

        // The connection lost before an answer.
        await page.Locator($"#upload-list tr[data-status=refused] button").ClickAsync();
        await Expect(page.Locator("#upload-list tr")).ToHaveCountAsync(2);
        await page.RouteAsync("**/api/v1/uploads/upload/", route => route.AbortAsync("connectionreset"));
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#upload-errors")).ToContainTextAsync("The connection was lost before Caravan answered");
        await Expect(page.Locator("#upload-list tr[data-status=chosen]")).ToHaveCountAsync(1);
        await page.UnrouteAllAsync(new() { Behavior = UnrouteBehavior.Wait });

        // A proxy in front of Caravan refusing the size with an HTML page: the page says so in its own words.
        await page.RouteAsync("**/api/v1/uploads/upload/", route => route.FulfillAsync(new()
        {
            Status = 413, ContentType = "text/html", Body = "<html><body><h1 id=proxy-page>413 Request Entity Too Large</h1></body></html>",
        }));
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#upload-errors")).ToHaveTextAsync("The upload is larger than this server, or a proxy in front of it, accepts.");
        await Expect(page.Locator("#proxy-page")).ToHaveCountAsync(0);
        Assert.DoesNotContain("Request Entity Too Large", await page.Locator("body").InnerTextAsync(), StringComparison.Ordinal);
        await page.UnrouteAllAsync(new() { Behavior = UnrouteBehavior.Wait });

        Assert.Equal(0, (await api.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK))["count"]!.GetValue<int>());
        await tab.AssertNoSecretAsync(key);
    }

    /// <summary>A CSV of a few MB (enough for the browser to report progress as it goes) and its amounts.</summary>
    private static (string Csv, List<long> Amounts) SalesCsv(int rows)
    {
        var regions = new[] { "north", "south", "east", "west" };
        var text = new StringBuilder("region,amount,sold_on\n");
        var amounts = new List<long>(rows);
        for (var i = 0; i < rows; i++)
        {
            var amount = (i * 37L % 1000) + 1;
            amounts.Add(amount);
            text.Append(CultureInfo.InvariantCulture, $"{regions[i % 4]},{amount},2026-{(i % 12) + 1:00}-{(i % 28) + 1:00}\n");
        }

        return (text.ToString(), amounts);
    }

    private static ILocatorAssertions Expect(ILocator locator) => Assertions.Expect(locator);
}
