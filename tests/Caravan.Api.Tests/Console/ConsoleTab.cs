using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Playwright;

namespace Caravan.Api.Tests.Console;

/// <summary>
/// One browser tab on the console with its own context (storage, cookies), every request it
/// makes recorded, and the checks the console's tests repeat: screenshots at both widths, no
/// horizontal scrolling, and no secret in the page, its storage or any URL.
/// </summary>
internal sealed class ConsoleTab : IAsyncDisposable
{
    public const string KeyName = "caravan.apiKey";

    private readonly ConcurrentQueue<string> _urls = new();
    private readonly IBrowserContext _context;

    private ConsoleTab(IBrowserContext context, IPage page)
    {
        _context = context;
        Page = page;
        page.Request += (_, request) => _urls.Enqueue(request.Url);
    }

    public IPage Page { get; }

    public IReadOnlyCollection<string> Urls => _urls;

    public static async Task<ConsoleTab> OpenAsync(ConsoleBrowser browser)
    {
        var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = browser.Address.ToString(),
            ViewportSize = new ViewportSize { Width = 1280, Height = 900 },
        });
        context.SetDefaultTimeout(15_000);
        return new ConsoleTab(context, await context.NewPageAsync());
    }

    /// <summary>A new tab signed in with <paramref name="key"/>, on the sources list.</summary>
    public static async Task<ConsoleTab> SignedInAsync(ConsoleBrowser browser, string key)
    {
        var tab = await OpenAsync(browser);
        await tab.SignInAsync(key);
        return tab;
    }

    public async Task SignInAsync(string key)
    {
        await Page.GotoAsync("/console/");
        await Page.Locator("#api-key").FillAsync(key);
        await Page.Locator("#api-key").PressAsync("Enter");
        await Page.Locator("h1", new() { HasText = "Sources" }).WaitForAsync();
    }

    /// <summary>Screenshots of the page at 1280 px and at a 390 px phone width; neither may scroll sideways.</summary>
    public async Task ShotAsync(string name)
    {
        foreach (var (width, height) in new[] { (1280, 900), (390, 844) })
        {
            await Page.SetViewportSizeAsync(width, height);
            var overflow = await Page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - document.documentElement.clientWidth");
            Assert.True(overflow <= 0, $"{name} scrolls sideways by {overflow} px at {width} px");
            await Page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ConsoleBrowser.Screenshots, $"{name}-{width}.png"), FullPage = true });
        }

        await Page.SetViewportSizeAsync(1280, 900);
    }

    /// <summary>No secret in the page's HTML, in storage other than the API key, in cookies, IndexedDB, or any URL requested.</summary>
    public async Task AssertNoSecretAsync(params string[] secrets)
    {
        var html = await Page.ContentAsync();
        var storage = await Page.EvaluateAsync<JsonElement>("""
            async () => ({
              local: Object.entries(localStorage),
              session: Object.entries(sessionStorage).filter(([k]) => k !== 'caravan.apiKey'),
              indexedDb: indexedDB.databases ? (await indexedDB.databases()).map(d => d.name) : [],
            })
            """);
        var cookies = await _context.CookiesAsync();
        Assert.Empty(storage.GetProperty("local").EnumerateArray());
        Assert.Empty(storage.GetProperty("session").EnumerateArray());
        Assert.Empty(storage.GetProperty("indexedDb").EnumerateArray());
        Assert.Empty(cookies);
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(secret, html, StringComparison.Ordinal);
            Assert.DoesNotContain(_urls, url => url.Contains(secret, StringComparison.Ordinal) || url.Contains(Uri.EscapeDataString(secret), StringComparison.Ordinal));
        }
    }

    public async ValueTask DisposeAsync() => await _context.CloseAsync();
}
