using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
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

    private readonly ConcurrentQueue<string> _output = new();
    private readonly Dictionary<string, string?> _settings = [];
    private readonly string _directory = CaravanApp.NewDataDirectory();
    private Process? _caravan;
    private IPlaywright? _playwright;

    public static bool Missing => !File.Exists(ChromiumPath);

    public IBrowser Browser { get; private set; } = null!;

    public Uri Address { get; private set; } = null!;

    /// <summary>Everything the Caravan process wrote, for tests that look for secrets in logs.</summary>
    public IReadOnlyCollection<string> Output => _output;

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
        var port = FreePort();
        Address = new Uri($"http://127.0.0.1:{port}");
        _caravan = Process.Start(CaravanProcess.Start(_settings, _directory, "--urls", Address.ToString()))!;
        _caravan.OutputDataReceived += (_, e) => _output.Enqueue(e.Data ?? string.Empty);
        _caravan.ErrorDataReceived += (_, e) => _output.Enqueue(e.Data ?? string.Empty);
        _caravan.BeginOutputReadLine();
        _caravan.BeginErrorReadLine();
        await WaitReadyAsync();

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
        var organization = "org-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(5));
        var result = await CaravanProcess.RunAsync(_settings, _directory, "keys", "create", "--org", organization);
        Assert.True(result.ExitCode == 0, result.Error);
        return result.Output.Trim().Split('\n')[^1].Trim();
    }

    public HttpClient Client(string key)
    {
        var client = new HttpClient { BaseAddress = Address };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }

        _playwright?.Dispose();
        if (_caravan is not null)
        {
            if (!_caravan.HasExited)
            {
                _caravan.Kill(entireProcessTree: true);
                await _caravan.WaitForExitAsync();
            }

            _caravan.Dispose();
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task WaitReadyAsync()
    {
        using var probe = new HttpClient { BaseAddress = Address };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            try
            {
                using var response = await probe.GetAsync(new Uri("/readyz", UriKind.Relative));
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (_caravan!.HasExited)
            {
                break;
            }

            await Task.Delay(100);
        }

        throw new InvalidOperationException("Caravan did not become ready within 30 s: " + string.Join('\n', _output));
    }
}
