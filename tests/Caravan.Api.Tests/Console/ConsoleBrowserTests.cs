using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Connectors;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Caravan.Api.Tests.Console;

/// <summary>
/// The web console in a real browser (Debian's Chromium through Playwright) against a real
/// Caravan over HTTP and, for the scenario, a real PostgreSQL with password authentication as the
/// source. Screenshots of each page at 1280 and 390 px go to the test output's screenshots folder.
/// </summary>
public sealed class ConsoleBrowserTests(ConsoleBrowser browser) : IClassFixture<ConsoleBrowser>
{
    [Fact]
    public async Task The_issue_scenario_add_fail_fix_test_schemas_conflict_history_delete()
    {
        Assert.SkipWhen(ConsoleBrowser.Missing, ConsoleBrowser.NoChromium);
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync(schemaCount: 3);
        var key = await browser.NewKeyAsync();
        using var api = browser.Client(key);
        var wrong = Unique.Secret("wrong-");
        var secrets = new[] { wrong, db.Password };
        var name = "Orders " + db.Database[^6..];
        await using var tab = await ConsoleTab.OpenAsync(browser);
        var page = tab.Page;

        // Sign in: a wrong key is refused with a message, the right one lands on the list.
        await page.GotoAsync("/console");
        await Expect(page.Locator("h1")).ToHaveTextAsync("Sign in");
        await tab.ShotAsync("sign-in");
        await page.Locator("#api-key").FillAsync("cvn_" + new string('0', 64));
        await page.Locator("#api-key").PressAsync("Enter");
        await Expect(page.Locator("#sign-in-error")).ToContainTextAsync("not accepted");
        await tab.SignInAsync(key);
        await Expect(page.Locator("#empty")).ToContainTextAsync("No sources yet");
        await tab.ShotAsync("sources-empty");

        // Add: a missing field shows its error next to it; the test with a wrong password fails at authenticate.
        await page.Locator("#nav-add").ClickAsync();
        await page.Locator("#type").SelectOptionAsync("POSTGRES");
        await page.Locator("#field-account_name").FillAsync(name);
        await page.Locator("#field-hostname").FillAsync(db.Host);
        await page.Locator("#field-port").FillAsync(db.Port.ToString(CultureInfo.InvariantCulture));
        await page.Locator("#field-username").FillAsync(db.Role);
        await page.Locator("#field-password").FillAsync(wrong);
        await Expect(page.Locator("#field-password")).ToHaveAttributeAsync("type", "password");
        await Expect(page.Locator("#field-password")).ToHaveAttributeAsync("autocomplete", "off");
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#field-database_name-error")).ToHaveTextAsync("This field is required.");
        await Expect(page.Locator("#field-database_name")).ToHaveAttributeAsync("aria-invalid", "true");
        await tab.AssertNoSecretAsync(secrets);
        await tab.ShotAsync("add-field-error");
        await page.Locator("#field-database_name").FillAsync(db.Database);
        await page.Locator("#test-unsaved").ClickAsync();
        await Expect(page.Locator("#test-summary")).ToContainTextAsync("failed at “authenticate”");
        await Expect(page.Locator("#steps li[data-step=authenticate]")).ToHaveAttributeAsync("data-status", "failed");
        await Expect(page.Locator("#steps li[data-step=authenticate] .code")).ToHaveTextAsync("auth_failed");
        await Expect(page.Locator("#steps li[data-step=connect]")).ToHaveAttributeAsync("data-status", "ok");
        await tab.AssertNoSecretAsync(secrets);
        await tab.ShotAsync("add-test-failed");
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#flash")).ToHaveTextAsync("Source added.");
        var id = long.Parse(page.Url.Split('/')[^1], CultureInfo.InvariantCulture);

        // Edit: the secret shows as set; a stored test fails; moving the host without the password is refused next to it.
        await Expect(page.Locator("h1")).ToHaveTextAsync(name);
        await Expect(page.Locator("#field-password-state")).ToContainTextAsync("set · updated");
        await Expect(page.Locator("#field-port")).ToHaveValueAsync(db.Port.ToString(CultureInfo.InvariantCulture));
        await tab.ShotAsync("source-settings");
        await page.Locator("#tab-link-test").ClickAsync();
        await page.Locator("#run-test").ClickAsync();
        await Expect(page.Locator("#test-summary")).ToContainTextAsync("failed at “authenticate”");
        await page.Locator("#tab-link-settings").ClickAsync();
        await page.Locator("#field-hostname").FillAsync("localhost");
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#field-password-error")).ToContainTextAsync("Changing hostname requires sending password again.");
        await page.Locator("#field-hostname").FillAsync(db.Host);
        await page.Locator("#field-password").FillAsync(db.Password);
        await page.Locator("#field-password").PressAsync("Enter");
        await Expect(page.Locator("#flash")).ToHaveTextAsync("Saved.");
        await Expect(page.Locator("#field-password")).ToHaveValueAsync(string.Empty);
        await tab.AssertNoSecretAsync(secrets);

        // Test it green; the steps are drawn from the stream.
        await page.Locator("#tab-link-test").ClickAsync();
        await page.Locator("#run-test").ClickAsync();
        await Expect(page.Locator("#test-summary")).ToContainTextAsync("The connection works");
        await Expect(page.Locator("#steps li[data-step=authenticate]")).ToHaveAttributeAsync("data-status", "ok");
        await Expect(page.Locator("#steps li[data-step=schemas]")).ToHaveAttributeAsync("data-status", "ok");
        await Expect(page.Locator("#steps li[data-status=failed]")).ToHaveCountAsync(0);
        Assert.DoesNotContain("null", await page.Locator("#test-panel").InnerTextAsync(), StringComparison.Ordinal);
        await tab.ShotAsync("source-test");

        // Schemas: pick two of the three, and the API stores exactly those.
        await page.Locator("#tab-link-schemas").ClickAsync();
        foreach (var schema in db.Schemas)
        {
            await Expect(page.Locator($"input[name=schema][value={schema}]")).Not.ToBeCheckedAsync();
        }

        await page.GetByLabel(db.Schemas[0], new() { Exact = true }).CheckAsync();
        await page.GetByLabel(db.Schemas[2], new() { Exact = true }).CheckAsync();
        await page.Locator("#save-schemas").ClickAsync();
        await Expect(page.Locator("#flash")).ToHaveTextAsync("Selection saved.");
        await Expect(page.Locator($"input[name=schema][value={db.Schemas[2]}]")).ToBeCheckedAsync();
        var config = await api.GetAsync(new Uri($"/api/v1/sources/{id}/config/", UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(new JsonArray(db.Schemas[0], db.Schemas[2]).ToJsonString(), config["config"]!["selected_schemas"]!.ToJsonString());
        await tab.ShotAsync("source-schemas");

        // Conflict: another tab changes the port first; this tab's change is refused, and Reload shows theirs.
        await page.Locator("#tab-link-settings").ClickAsync();
        await Expect(page.Locator("#field-port")).ToBeVisibleAsync();
        await using (var other = await ConsoleTab.OpenAsync(browser))
        {
            await other.SignInAsync(key);
            await other.Page.GotoAsync($"/console/#/sources/{id}/settings");
            await other.Page.Locator("#field-port").FillAsync("6543");
            await other.Page.Locator("#save").ClickAsync();
            await Expect(other.Page.Locator("#flash")).ToHaveTextAsync("Saved.");
            await other.AssertNoSecretAsync(secrets);
        }

        await page.Locator("#field-port").FillAsync("7654");
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#conflict")).ToContainTextAsync("Someone else changed this source");
        await tab.ShotAsync("source-conflict");
        await page.Locator("#reload").ClickAsync();
        await Expect(page.Locator("#field-port")).ToHaveValueAsync("6543");
        var stored = await api.GetAsync(new Uri($"/api/v1/sources/{id}/config/", UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(6543, stored["config"]!["port"]!.GetValue<int>());

        // History: readable, with the secret only as changed.
        await page.Locator("#tab-link-history").ClickAsync();
        await Expect(page.Locator("#revisions > li")).ToHaveCountAsync(4);
        await Expect(page.Locator("#revisions > li").First).ToContainTextAsync($"{db.Port} → 6543");
        await Expect(page.Locator("#revisions")).ToContainTextAsync("was changed (secret)");
        await Expect(page.Locator("#revisions")).ToContainTextAsync("Schemas");
        await Expect(page.Locator("#revisions > li").Last).ToContainTextAsync("#1 · Created");
        await tab.ShotAsync("source-history");

        // The list shows the last test, and search finds the source by part of its name.
        await page.Locator("#nav-sources").ClickAsync();
        await Expect(page.Locator($"#sources tr[data-id='{id}'] .last-test")).ToContainTextAsync("Passed");
        await page.Locator("#search").FillAsync(name[..4].ToUpperInvariant());
        await page.Locator("#search").PressAsync("Enter");
        await Expect(page.Locator("#sources tbody tr")).ToHaveCountAsync(1);
        await tab.ShotAsync("sources-list");
        await page.Locator("#search").FillAsync("no-such-name");
        await page.Locator("#search").PressAsync("Enter");
        await Expect(page.Locator("#empty")).ToContainTextAsync("no-such-name");

        // Delete, confirmed by typing the name the dialog quotes.
        await page.GotoAsync($"/console/#/sources/{id}");
        await page.Locator("#delete").ClickAsync();
        await Expect(page.Locator("#delete-title")).ToHaveTextAsync($"Delete “{name}”?");
        await Expect(page.Locator("#confirm-delete")).ToBeDisabledAsync();
        await page.Locator("#confirm-name").FillAsync(name);
        await tab.ShotAsync("source-delete");
        await page.Locator("#confirm-delete").ClickAsync();
        await Expect(page.Locator("#flash")).ToHaveTextAsync($"Deleted “{name}”.");
        await api.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.NotFound);

        await tab.AssertNoSecretAsync(secrets);
        Assert.DoesNotContain(tab.Urls, url => url.Contains(key, StringComparison.Ordinal));
        Assert.DoesNotContain(tab.Urls, url => !url.StartsWith(browser.Address.ToString(), StringComparison.Ordinal));
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(browser.Output, line => line.Contains(secret, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task The_type_list_is_the_APIs_and_Snowflake_shows_the_key_statement_once_for_a_double_submit()
    {
        Assert.SkipWhen(ConsoleBrowser.Missing, ConsoleBrowser.NoChromium);
        var key = await browser.NewKeyAsync();
        using var api = browser.Client(key);
        await using var tab = await ConsoleTab.SignedInAsync(browser, key);
        var page = tab.Page;
        await page.Locator("#nav-add").ClickAsync();

        var offered = await page.Locator("#type option").EvaluateAllAsync<string[]>("options => options.map(o => o.value).filter(v => v)");
        var served = (await api.GetAsync(new Uri("/api/v1/source-types/", UriKind.Relative)).Expect(HttpStatusCode.OK))["results"]!.AsArray()
            .Select(t => t!["type"]!.GetValue<string>());
        Assert.Equal(served, offered);
        Assert.Equal(SourceTypes.All.Select(t => t.Name), offered);

        await page.Locator("#type").SelectOptionAsync("SNOWFLAKE");
        await Expect(page.Locator("#key-pair-note")).ToBeVisibleAsync();
        await Expect(page.Locator("#field-private_key")).ToHaveAttributeAsync("type", "password");
        await page.Locator("#field-account_name").FillAsync("Warehouse");
        await page.Locator("#field-account").FillAsync("xy12345.us-east-1");
        await page.Locator("#field-user").FillAsync("LOADER");
        await tab.ShotAsync("add-snowflake");
        await page.EvaluateAsync("() => { const form = document.getElementById('add-form'); form.requestSubmit(); form.requestSubmit(); }");

        await Expect(page.Locator("#public-key-sql")).ToContainTextAsync("ALTER USER \"LOADER\" SET RSA_PUBLIC_KEY=");
        await Expect(page.Locator("#copy-sql")).ToBeVisibleAsync();
        await tab.ShotAsync("add-snowflake-key");
        var list = await api.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(1, list["count"]!.GetValue<int>());
        await tab.AssertNoSecretAsync();
    }

    [Fact]
    public async Task Keyboard_and_session_Escape_closes_the_dialog_a_revoked_key_returns_to_sign_in_and_sign_out_forgets_the_key()
    {
        Assert.SkipWhen(ConsoleBrowser.Missing, ConsoleBrowser.NoChromium);
        var key = await browser.NewKeyAsync();
        using var api = browser.Client(key);
        var id = await api.CreateSourceAsync(
            """{"type": "mysql", "account_name": "Shop", "hostname": "db.internal", "username": "shop", "password": "pw-kbd-5d1f0b", "database_name": "shop"}""");
        await using var tab = await ConsoleTab.SignedInAsync(browser, key);
        var page = tab.Page;
        Assert.Equal(key, await page.EvaluateAsync<string>("() => sessionStorage.getItem('caravan.apiKey')"));

        await page.GotoAsync($"/console/#/sources/{id}/settings");
        await Expect(page.Locator("#field-password-state")).ToContainTextAsync("set · updated");
        await page.Locator("#delete").FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#delete-dialog")).ToBeVisibleAsync();
        await Expect(page.Locator("#confirm-name")).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Escape");
        await Expect(page.Locator("#delete-dialog")).ToHaveCountAsync(0);
        await Expect(page.Locator("#delete")).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Tab");
        Assert.NotEqual("BODY", await page.EvaluateAsync<string>("() => document.activeElement.tagName"));
        await tab.AssertNoSecretAsync("pw-kbd-5d1f0b");

        await page.EvaluateAsync("() => sessionStorage.setItem('caravan.apiKey', 'cvn_' + '1'.repeat(64))");
        await page.GotoAsync("/console/#/sources");
        await Expect(page.Locator("#sign-in-error")).ToContainTextAsync("Invalid API key.");
        Assert.Null(await page.EvaluateAsync<string?>("() => sessionStorage.getItem('caravan.apiKey')"));

        await tab.SignInAsync(key);
        await page.Locator("#sign-out").ClickAsync();
        await Expect(page.Locator("#sign-in-error")).ToHaveTextAsync("You are signed out.");
        Assert.Null(await page.EvaluateAsync<string?>("() => sessionStorage.getItem('caravan.apiKey')"));
        Assert.DoesNotContain(tab.Urls, url => url.Contains(key, StringComparison.Ordinal));
    }

    private static ILocatorAssertions Expect(ILocator locator) => Assertions.Expect(locator);
}
