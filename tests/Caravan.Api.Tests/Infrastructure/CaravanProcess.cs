using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;

namespace Caravan.Api.Tests.Infrastructure;

/// <summary>Runs the real Caravan program (the API's dll beside the tests) as its own process.</summary>
public static class CaravanProcess
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "Caravan.Api.dll");

    public sealed record Result(int ExitCode, string Output, string Error);

    /// <summary>Runs one command with the given settings (configuration keys, turned into environment variables).</summary>
    public static async Task<Result> RunAsync(IReadOnlyDictionary<string, string?> settings, string workingDirectory, params string[] args)
    {
        using var process = new Process { StartInfo = Start(settings, workingDirectory, args) };
        process.Start();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"caravan {string.Join(' ', args)} did not finish within 90 s");
        }

        return new Result(process.ExitCode, await output, await error);
    }

    public static ProcessStartInfo Start(IReadOnlyDictionary<string, string?> settings, string workingDirectory, params string[] args) =>
        StartUnderUmask(settings, workingDirectory, umask: null, args);

    /// <summary>
    /// As <see cref="Start(IReadOnlyDictionary{string, string?}, string, string[])"/>, under the given
    /// umask (octal, e.g. <c>022</c>) rather than the test process's own, when there is one.
    /// </summary>
    /// <remarks>
    /// A name of its own, not an overload of <c>Start</c>: with one, <c>Start(settings, directory,
    /// "--urls", url)</c> bound "--urls" to the umask.
    /// </remarks>
    public static ProcessStartInfo StartUnderUmask(IReadOnlyDictionary<string, string?> settings, string workingDirectory, string? umask, params string[] args)
    {
        var start = new ProcessStartInfo(umask is null ? "dotnet" : "/bin/sh")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (umask is not null)
        {
            Assert.True(umask.All(c => c is >= '0' and <= '7'), "a umask is octal digits");
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add($"umask {umask} && exec dotnet \"$@\"");
            start.ArgumentList.Add("sh");
        }

        start.ArgumentList.Add(Dll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // As in CaravanApp: rate limits off, unless a test's settings say otherwise.
        start.Environment[CaravanApp.RateLimitsEnabled.Replace(":", "__", StringComparison.Ordinal)] = "false";
        foreach (var (key, value) in settings)
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        start.Environment.Remove("ASPNETCORE_ENVIRONMENT");
        return start;
    }

    /// <summary>
    /// A Caravan server as its own process, listening on a free loopback port, ready (its
    /// <c>/readyz</c> answered) when <see cref="StartAsync"/> returns; what it writes is kept.
    /// </summary>
    public sealed class Server : IDisposable
    {
        private readonly Process _process;
        private readonly ConcurrentQueue<string> _output = new();
        private readonly ConcurrentQueue<string> _error = new();

        private Server(Process process, Uri address)
        {
            _process = process;
            Address = address;
        }

        public Uri Address { get; }

        /// <summary>
        /// The most memory the process has held (<c>VmHWM</c>, its peak resident set, in bytes) since it
        /// started or since <see cref="ResetPeakMemory"/>; Linux only.
        /// </summary>
        public long PeakMemory
        {
            get
            {
                var line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
                return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }

        /// <summary>Starts <see cref="PeakMemory"/> afresh from what the process holds now (Linux: 5 written to its clear_refs).</summary>
        public void ResetPeakMemory() => File.WriteAllText($"/proc/{_process.Id}/clear_refs", "5");

        /// <summary>The lines written to standard output so far.</summary>
        public IReadOnlyCollection<string> Output => _output;

        /// <summary>The lines written to standard error so far.</summary>
        public IReadOnlyCollection<string> Error => _error;

        /// <summary>The id of the Caravan process.</summary>
        public int ProcessId => _process.Id;

        public static async Task<Server> StartAsync(IReadOnlyDictionary<string, string?> settings, string directory, string? umask = null)
        {
            var address = new Uri($"http://127.0.0.1:{Loopback.ClosedPort()}");
            var server = new Server(new Process { StartInfo = StartUnderUmask(settings, directory, umask, "--urls", address.ToString()) }, address);
            server._process.OutputDataReceived += (_, e) => server._output.Enqueue(e.Data ?? string.Empty);
            server._process.ErrorDataReceived += (_, e) => server._error.Enqueue(e.Data ?? string.Empty);
            server._process.Start();
            server._process.BeginOutputReadLine();
            server._process.BeginErrorReadLine();
            using var probe = new HttpClient { BaseAddress = address };
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(30) && !server._process.HasExited)
            {
                try
                {
                    using var response = await probe.GetAsync(new Uri("/readyz", UriKind.Relative));
                    if (response.IsSuccessStatusCode)
                    {
                        return server;
                    }
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }

                await Task.Delay(100);
            }

            server.Dispose();
            throw new InvalidOperationException("Caravan did not become ready within 30 s: " + string.Join('\n', server._output.Concat(server._error)));
        }

        public HttpClient Client(string key)
        {
            var client = new HttpClient { BaseAddress = Address };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            return client;
        }

        /// <summary>
        /// Stops the process as a service manager does (SIGTERM), so it shuts down and writes out what
        /// it logged; killed if it takes more than 10 s.
        /// </summary>
        public async Task StopAsync()
        {
            if (_process.HasExited)
            {
                return;
            }

            using (var signal = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await signal.WaitForExitAsync();
            }

            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        /// <summary>Kills the process with SIGKILL, as a crash or a power cut would end it: nothing of it runs after.</summary>
        public async Task KillAsync()
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }

            _process.Dispose();
        }
    }
}
