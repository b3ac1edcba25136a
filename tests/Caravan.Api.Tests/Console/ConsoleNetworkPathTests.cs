using System.Globalization;
using System.Net;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.NetworkPaths;
using Microsoft.Playwright;

namespace Caravan.Api.Tests.Console;

/// <summary>
/// The ssh_tunnel and tls groups in the console's forms (Chromium through Playwright): collapsed
/// by default, filled in as nested objects, their errors shown next to the member (the section
/// opened), their stored state shown on the settings page, and removed with one box.
/// </summary>
public sealed class ConsoleNetworkPathTests(ConsoleBrowser browser) : IClassFixture<ConsoleBrowser>
{
    [Fact]
    public async Task Both_groups_are_collapsed_filled_in_read_back_and_removed()
    {
        Assert.SkipWhen(ConsoleBrowser.Missing, ConsoleBrowser.NoChromium);
        var key = await browser.NewKeyAsync();
        using var api = browser.Client(key);
        var tunnelPassword = PathKeys.Password("t");
        var dbPassword = PathKeys.Password("d");
        using var authority = new PathKeys.Authority("Console CA");
        await using var tab = await ConsoleTab.SignedInAsync(browser, key);
        var page = tab.Page;

        await page.Locator("#nav-add").ClickAsync();
        await page.Locator("#type").SelectOptionAsync("POSTGRES");
        await Expect(page.Locator("#field-ssh_tunnel")).Not.ToHaveAttributeAsync("open", string.Empty);
        await Expect(page.Locator("#field-tls")).Not.ToHaveAttributeAsync("open", string.Empty);
        await Expect(page.Locator("#field-ssh_tunnel-host")).Not.ToBeVisibleAsync();
        await page.Locator("#field-account_name").FillAsync("Behind a bastion");
        await page.Locator("#field-hostname").FillAsync("db.internal");
        await page.Locator("#field-username").FillAsync("analyst");
        await page.Locator("#field-password").FillAsync(dbPassword);
        await page.Locator("#field-database_name").FillAsync("sales");

        // A member's error opens its section and shows next to it.
        await page.Locator("#field-ssh_tunnel-title").ClickAsync();
        await page.Locator("#field-ssh_tunnel-host").FillAsync("bastion.example.com");
        await page.Locator("#field-ssh_tunnel-username").FillAsync("jump");
        await page.Locator("#field-ssh_tunnel-password").FillAsync(tunnelPassword);
        await page.Locator("#field-ssh_tunnel-host_key").FillAsync("MD5:00:11");
        await page.Locator("#field-ssh_tunnel-title").ClickAsync();
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#field-ssh_tunnel")).ToHaveAttributeAsync("open", string.Empty);
        await Expect(page.Locator("#field-ssh_tunnel-host_key-error")).ToContainTextAsync("SHA256:");
        await page.Locator("#field-ssh_tunnel-host_key").FillAsync("SHA256:" + new string('A', 43));
        await page.Locator("#field-tls-title").ClickAsync();
        await page.Locator("#field-tls-mode").SelectOptionAsync("verify-full");
        await page.Locator("#field-tls-ca_certificate").FillAsync(authority.CertificatePem);
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#flash")).ToHaveTextAsync("Source added.");
        var id = long.Parse(page.Url.Split('/')[^1], CultureInfo.InvariantCulture);

        var stored = await api.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal("bastion.example.com", stored["config"]!["ssh_tunnel"]!["host"]!.GetValue<string>());
        Assert.Equal(22, stored["config"]!["ssh_tunnel"]!["port"]!.GetValue<int>());
        Assert.True(stored["secrets"]!["ssh_tunnel"]!["password"]!["set"]!.GetValue<bool>());
        Assert.Equal("verify-full", stored["config"]!["tls"]!["mode"]!.GetValue<string>());

        // The settings page: the groups say they are set, the secret by state, the certificate described.
        await Expect(page.Locator("#field-ssh_tunnel-title")).ToContainTextAsync("set");
        await page.Locator("#field-ssh_tunnel-title").ClickAsync();
        await Expect(page.Locator("#field-ssh_tunnel-password-state")).ToContainTextAsync("set · updated");
        await Expect(page.Locator("#field-ssh_tunnel-host")).ToHaveValueAsync("bastion.example.com");
        await page.Locator("#field-tls-title").ClickAsync();
        await Expect(page.Locator("#field-tls-ca_certificate-state")).ToContainTextAsync("CN=Console CA, issued by CN=Console CA");
        await tab.AssertNoSecretAsync([tunnelPassword, dbPassword]);

        // Changing one member sends that member only; removing the tunnel sends null.
        await page.Locator("#field-ssh_tunnel-port").FillAsync("2222");
        await page.Locator("#save").ClickAsync();
        await Expect(page.Locator("#flash")).ToHaveTextAsync("Saved.");
        stored = await api.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(2222, stored["config"]!["ssh_tunnel"]!["port"]!.GetValue<int>());
        Assert.True(stored["secrets"]!["ssh_tunnel"]!["password"]!["set"]!.GetValue<bool>());
        Assert.Single(stored["config"]!["tls"]!["ca_certificate"]!.AsArray());

        await page.Locator("#field-ssh_tunnel-title").ClickAsync();
        await page.Locator("#field-ssh_tunnel-remove").CheckAsync();
        await page.Locator("#save").ClickAsync();
        // "Saved." is still shown from the save above: wait for the store instead.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        do
        {
            await Task.Delay(100);
            stored = await api.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        }
        while (stored["config"]!["ssh_tunnel"] is not null && clock.Elapsed < TimeSpan.FromSeconds(15));
        await Expect(page.Locator("#flash")).ToHaveTextAsync("Saved.");
        Assert.Null(stored["config"]!["ssh_tunnel"]);
        Assert.Equal("verify-full", stored["config"]!["tls"]!["mode"]!.GetValue<string>());
    }

    private static ILocatorAssertions Expect(ILocator locator) => Assertions.Expect(locator);
}
