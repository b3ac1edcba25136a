using Caravan.Api.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Caravan.Api.Tests.Console;

/// <summary>
/// A real Caravan listening on a free loopback port (its own process, on a fresh store of this
/// run's kind) and Debian's Chromium driven by Playwright, headless; Playwright gives every launch
/// a fresh temporary profile (it refuses a --user-data-dir of ours with a plain launch). Playwright
/// never downloads a browser: it is given /usr/bin/chromium, and without it the tests skip.
/// </summary>
public sealed class ConsoleBrowser : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";
    public const string NoChromium = "No Chromium at /usr/bin/chromium: ./test.sh installs it (apt-get install chromium).";

    private readonly Dictionary<string, string?> _settings = [];
    private readonly string _directory = CaravanApp.NewDataDirectory();
    private CaravanProcess.Server? _caravan;
    private IPlaywright? _playwright;

    public static bool Missing => !File.Exists(ChromiumPath);

    public IBrowser Browser { get; private set; } = null!;

    public Uri Address => _caravan!.Address;

    /// <summary>Everything the Caravan process wrote, for tests that look for secrets in logs.</summary>
    public IEnumerable<string> Output => _caravan is null ? [] : _caravan.Output.Concat(_caravan.Error);

    public static string Screenshots { get; } = Path.Combine(AppContext.BaseDirectory, "screenshots");

    public async ValueTask InitializeAsync()
    {
        if (Missing)
        {
            return;
        }

        foreach (var (key, value) in TestStore.NewStoreSettings(_directory))
        {
            _settings[key] = value;
        }

        _settings["Caravan:Secrets:MasterKeyFile"] = Path.Combine(_directory, "master.key");
        _settings["Logging:LogLevel:Default"] = "Debug";
        _caravan = await CaravanProcess.Server.StartAsync(_settings, _directory);

        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
            ],
        });
        Directory.CreateDirectory(Screenshots);
    }

    /// <summary>A new organization with its key, made with the program's own command line.</summary>
    public async Task<string> NewKeyAsync()
    {
        var organization = Unique.Name("org-");
        var result = await CaravanProcess.RunAsync(_settings, _directory, "keys", "create", "--org", organization);
        Assert.True(result.ExitCode == 0, result.Error);
        return result.Output.Trim().Split('\n')[^1].Trim();
    }

    public HttpClient Client(string key) => _caravan!.Client(key);

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }

        _playwright?.Dispose();
        _caravan?.Dispose();
    }
}
