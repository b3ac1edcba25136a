using System.Globalization;
using System.Net;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;
using Microsoft.Playwright;

namespace Caravan.Api.Tests.Console;

/// <summary>
/// MCP sources in the console, in a real browser against a real Caravan and a real MCP server on
/// loopback: added with the form, tested (the server's name and tool count in the steps), and their
/// tools listed with what each does, its arguments and whether agents are offered it; choosing
/// tools saves <c>selected_tools</c>.
/// </summary>
public sealed class ConsoleMcpTests(ConsoleBrowser browser) : IClassFixture<ConsoleBrowser>
{
    [Fact]
    public async Task An_mcp_server_is_added_tested_and_its_tools_are_shown_and_chosen()
    {
        Assert.SkipWhen(ConsoleBrowser.Missing, ConsoleBrowser.NoChromium);
        var token = Unique.Secret("mcp-token-");
        await using var remote = await RemoteMcpServer.StartAsync(token);
        var key = await browser.NewKeyAsync();
        using var api = browser.Client(key);
        await using var tab = await ConsoleTab.SignedInAsync(browser, key);
        var page = tab.Page;

        await page.Locator("#nav-add").ClickAsync();
        await page.Locator("#type").SelectOptionAsync("MCP");
        await page.Locator("#field-account_name").FillAsync("Tickets");
        await page.Locator("#field-base_url").FillAsync(remote.BaseUrl);
        await page.Locator("#field-access_token").FillAsync(token);
        await Expect(page.Locator("#field-access_token")).ToHaveAttributeAsync("type", "password");
        await page.Locator("#test-unsaved").ClickAsync();
        await Expect(page.Locator("#steps li[data-step='tools/list']")).ToHaveAttributeAsync("data-status", "ok");
        await Expect(page.Locator("#steps li[data-step=initialize]")).ToContainTextAsync(RemoteMcpServer.ServerName);
        await Expect(page.Locator("#steps li[data-step='tools/list']")).ToContainTextAsync("3 tools");
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#flash")).ToHaveTextAsync("Source added.");
        var id = long.Parse(page.Url.Split('/')[^1], CultureInfo.InvariantCulture);
        await tab.AssertNoSecretAsync(token);

        await page.GotoAsync($"/console/#/sources/{id}/schemas");
        await Expect(page.Locator("#tab-link-schemas")).ToHaveTextAsync("Tools");
        await Expect(page.Locator(".tool")).ToHaveCountAsync(3);
        await Expect(page.Locator(".tool[data-tool=echo]")).ToContainTextAsync("Repeats the text it is given.");
        await Expect(page.Locator(".tool[data-tool=add]")).ToContainTextAsync("Arguments: a, b");
        await Expect(page.Locator(".tool[data-offered=true]")).ToHaveCountAsync(3);
        await Expect(page.Locator("input[name=schema]:checked")).ToHaveCountAsync(0);
        await Expect(page.Locator("#schemas-form")).ToContainTextAsync($"{id}__<tool>");
        await tab.ShotAsync("mcp-tools");

        await page.Locator(".tool[data-tool=echo] input").CheckAsync();
        await page.Locator(".tool[data-tool=add] input").CheckAsync();
        await page.Locator("#save-schemas").ClickAsync();
        await Expect(page.Locator("#flash")).ToHaveTextAsync("Selection saved.");
        await Expect(page.Locator(".tool[data-tool=wipe]")).ToHaveAttributeAsync("data-offered", "false");
        await Expect(page.Locator(".tool[data-tool=wipe]")).ToContainTextAsync("Not offered.");
        await Expect(page.Locator(".tool[data-tool=wipe]")).Not.ToContainTextAsync("Arguments");
        await Expect(page.Locator(".tool[data-tool=echo] input")).ToBeCheckedAsync();
        var config = await api.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(["echo", "add"], config["config"]!["selected_tools"]!.AsArray().Select(n => n!.GetValue<string>()));
        await tab.AssertNoSecretAsync(token);
    }

    private static ILocatorAssertions Expect(ILocator locator) => Assertions.Expect(locator);
}
