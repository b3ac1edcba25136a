using System.Collections.Concurrent;
using Microsoft.Playwright;

namespace Caravan.Api.Tests.Console;

/// <summary>
/// The API docs (Scalar at <c>/api/docs/</c>) in a real browser under their Content-Security-Policy:
/// they render and send a test request, load nothing from elsewhere, and break no rule of the policy.
/// </summary>
public sealed class ApiDocsBrowserTests(ConsoleBrowser browser) : IClassFixture<ConsoleBrowser>
{
    [Fact]
    public async Task The_docs_render_and_send_a_request_under_their_policy_without_a_violation()
    {
        Assert.SkipWhen(ConsoleBrowser.Missing, ConsoleBrowser.NoChromium);
        var key = await browser.NewKeyAsync();
        await using var tab = await ConsoleTab.OpenAsync(browser);
        var page = tab.Page;
        var violations = new ConcurrentQueue<string>();
        page.Console += (_, message) =>
        {
            if (message.Text.StartsWith("csp-violation ", StringComparison.Ordinal))
            {
                violations.Enqueue(message.Text);
            }
        };
        await page.AddInitScriptAsync("""
            document.addEventListener('securitypolicyviolation', e =>
              console.log(`csp-violation ${e.effectiveDirective} ${e.blockedURI} ${e.sourceFile}`));
            """);

        var loaded = await page.GotoAsync("/api/docs/");
        Assert.Contains("script-src 'self' 'nonce-", (await loaded!.AllHeadersAsync()).GetValueOrDefault("content-security-policy") ?? "(none)", StringComparison.Ordinal);
        // Scalar's bundle is 5 MB of script: on a loaded machine it takes a while to render.
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Caravan API", Level = 1 })).ToBeVisibleAsync(new() { Timeout = 60_000 });
        await page.GetByText("List data sources").First.ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Test Request" }).First.ClickAsync();
        await page.Locator("input[placeholder='Token']:visible").Last.FillAsync(key);
        await page.Keyboard.PressAsync("Control+Enter");
        await Expect(page.GetByText("200 OK").First).ToBeVisibleAsync(new() { Timeout = 30_000 });
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ConsoleBrowser.Screenshots, "api-docs-test-request.png") });

        // Scalar's validation library (zod) tries Function('') once to see whether it may compile
        // validators, and without eval validates without compiling: that refusal is the policy working.
        var unexpected = violations.Where(v => !(v.StartsWith("csp-violation script-src eval ", StringComparison.Ordinal) && v.EndsWith("/api/docs/scalar.js", StringComparison.Ordinal)));
        Assert.Empty(unexpected);
        var requests = tab.Urls;
        Assert.All(requests, url => Assert.StartsWith(browser.Address.GetLeftPart(UriPartial.Authority) + "/", url, StringComparison.Ordinal));
        Assert.Contains(requests, url => url.EndsWith("/api/schema/", StringComparison.Ordinal));
        Assert.Contains(requests, url => url.Contains("/api/v1/sources/", StringComparison.Ordinal));
    }

    private static ILocatorAssertions Expect(ILocator locator) => Assertions.Expect(locator);
}
