using System.Diagnostics;

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

    public static ProcessStartInfo Start(IReadOnlyDictionary<string, string?> settings, string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
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
}
