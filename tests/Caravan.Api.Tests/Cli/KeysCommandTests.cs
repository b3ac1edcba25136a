using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Cli;

/// <summary>
/// The administrative role of the program (contract section 7), run as a real process on a store of
/// its own: <c>keys create|list|revoke</c> and <c>migrate</c>.
/// </summary>
public sealed partial class KeysCommandTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Keys_create_prints_a_new_key_as_the_last_line_of_standard_output()
    {
        var directory = CaravanApp.NewDataDirectory();

        var result = await RunAsync(directory, "keys", "create", "--org", "acme");

        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.StdoutLines;
        Assert.True(lines.Count == 2, "standard output holds a message line and the key, nothing else:\n" + result.Stdout);
        var key = lines[^1];
        Assert.Matches(KeyPattern(), key);
        Assert.True(Math.Log2(62) * (key.Length - 4) >= 256, "at least 256 bits of entropy");
        Assert.DoesNotContain(key, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain(key, result.Stderr, StringComparison.Ordinal);

        // The store holds only a hash of it.
        var db = await File.ReadAllBytesAsync(Path.Combine(directory, "caravan.db"), TestContext.Current.CancellationToken);
        Assert.True(db.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(key)) < 0, "the key itself is not stored");

        // Two keys are never alike.
        var second = await RunAsync(directory, "keys", "create", "--org", "acme");
        Assert.Equal(0, second.ExitCode);
        Assert.NotEqual(key, second.StdoutLines[^1]);
        Assert.Matches(KeyPattern(), second.StdoutLines[^1]);
    }

    [Fact]
    public async Task Keys_list_prints_one_tab_separated_line_per_key_and_filters_by_organization()
    {
        var directory = CaravanApp.NewDataDirectory();
        var started = DateTimeOffset.UtcNow.AddSeconds(-2);
        var acme1 = await CreateKeyAsync(directory, "acme");
        var globex = await CreateKeyAsync(directory, "globex");
        var acme2 = await CreateKeyAsync(directory, "acme");
        var finished = DateTimeOffset.UtcNow.AddSeconds(2);

        var all = await RunAsync(directory, "keys", "list");
        Assert.True(all.ExitCode == 0, all.ToString());
        var rows = all.StdoutLines.Select(line => line.Split('\t')).ToList();
        Assert.Equal(3, rows.Count);
        Assert.All(rows, row => Assert.Equal(5, row.Length));
        var ids = rows.Select(r => r[0]).ToList();
        Assert.Equal(3, ids.Distinct().Count());

        foreach (var (organization, key) in new[] { ("acme", acme1), ("globex", globex), ("acme", acme2) })
        {
            var row = Assert.Single(rows, r => r[2] == key[..8] && r[1] == organization);
            Assert.False(string.IsNullOrWhiteSpace(row[0]));
            Assert.DoesNotContain(key, string.Join("\t", row), StringComparison.Ordinal);
            Assert.Matches(Rfc3339Utc(), row[3]);
            var created = DateTimeOffset.Parse(row[3], System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(created, started, finished);
            Assert.Equal("active", row[4]);
        }

        var acme = await RunAsync(directory, "keys", "list", "--org", "acme");
        Assert.True(acme.ExitCode == 0, acme.ToString());
        Assert.Equal(2, acme.StdoutLines.Count);
        Assert.All(acme.StdoutLines, line => Assert.Equal("acme", line.Split('\t')[1]));

        var nobody = await RunAsync(directory, "keys", "list", "--org", "initech");
        Assert.Equal(0, nobody.ExitCode);
        Assert.Empty(nobody.StdoutLines);
    }

    [Fact]
    public async Task Keys_revoke_takes_effect_on_the_next_request_of_a_running_service()
    {
        var directory = CaravanApp.NewDataDirectory();
        var revokedKey = await CreateKeyAsync(directory, "acme");
        var keptKey = await CreateKeyAsync(directory, "acme");
        var keyId = (await ListAsync(directory)).Single(r => r[2] == revokedKey[..8])[0];

        await using (var app = new OwnCaravan(directory, SqliteStore(directory)))
        {
            using var revoked = Client(app, revokedKey);
            using var kept = Client(app, keptKey);
            var id = await kept.CreateSourceAsync("""{"type": "motherduck", "database_name": "db", "token": "md-token"}""");
            await revoked.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);

            var result = await RunAsync(directory, "keys", "revoke", keyId);
            Assert.True(result.ExitCode == 0, result.ToString());

            await AssertInvalidKeyAsync(revoked, $"/api/v1/sources/{id}/");
            await AssertInvalidKeyAsync(revoked, "/api/v1/sources/");
            await kept.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
        }

        var rows = await ListAsync(directory);
        Assert.Equal("revoked", rows.Single(r => r[0] == keyId)[4]);
        Assert.Equal("active", rows.Single(r => r[2] == keptKey[..8])[4]);

        // A service started afterwards refuses it too; revoking twice is harmless.
        await using (var app = new OwnCaravan(directory, SqliteStore(directory)))
        {
            using var revoked = Client(app, revokedKey);
            using var kept = Client(app, keptKey);
            await AssertInvalidKeyAsync(revoked, "/api/v1/sources/");
            await kept.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
        }

        var again = await RunAsync(directory, "keys", "revoke", keyId);
        Assert.Equal(0, again.ExitCode);
        Assert.Equal("revoked", (await ListAsync(directory)).Single(r => r[0] == keyId)[4]);
    }

    [Fact]
    public async Task Keys_revoke_of_an_unknown_key_fails_with_a_message_on_standard_error()
    {
        var directory = CaravanApp.NewDataDirectory();
        await CreateKeyAsync(directory, "acme");

        var result = await RunAsync(directory, "keys", "revoke", "key_000000000000");

        Assert.NotEqual(0, result.ExitCode);
        Assert.False(string.IsNullOrWhiteSpace(result.Stderr), result.ToString());
        Assert.Empty(result.StdoutLines);
        Assert.All(await ListAsync(directory), row => Assert.Equal("active", row[4]));
    }

    [Theory]
    [InlineData("keys", "create")]
    [InlineData("keys", "create", "--org")]
    [InlineData("keys", "create", "--org", "")]
    [InlineData("keys", "create", "--org", "two words")]
    [InlineData("keys", "revoke")]
    [InlineData("keys", "frobnicate")]
    [InlineData("keys")]
    public async Task A_command_without_what_it_needs_fails_with_usage_on_standard_error(params string[] args)
    {
        var directory = CaravanApp.NewDataDirectory();

        var result = await RunAsync(directory, args);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Empty(result.StdoutLines);
        Assert.False(string.IsNullOrWhiteSpace(result.Stderr), result.ToString());
        if (args is ["keys", "create", ..])
        {
            Assert.Contains("--org", result.Stderr, StringComparison.Ordinal);
        }

        Assert.Empty(await ListAsync(directory));
    }

    [Fact]
    public async Task Migrate_applies_the_schema_and_is_idempotent()
    {
        var directory = CaravanApp.NewDataDirectory();

        var first = await RunAsync(directory, "migrate");
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.True(File.Exists(Path.Combine(directory, "caravan.db")));

        var second = await RunAsync(directory, "migrate");
        Assert.True(second.ExitCode == 0, second.ToString());

        // The migrated store serves.
        var key = await CreateKeyAsync(directory, "acme");
        await using var app = new OwnCaravan(directory, SqliteStore(directory));
        using var http = Client(app, key);
        await http.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
    }

    private static async Task AssertInvalidKeyAsync(HttpClient client, string url)
    {
        using var response = await client.GetAsync(new Uri(url, UriKind.Relative), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("""{"detail":"Invalid API key."}""", (await response.JsonAsync()).Compact());
        Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
    }

    /// <summary>The store the commands use: a service started with these settings sees what they wrote.</summary>
    private static Dictionary<string, string?> SqliteStore(string directory) => new()
    {
        ["Caravan:Storage:Provider"] = "Sqlite",
        ["ConnectionStrings:Caravan"] = $"Data Source={Path.Combine(directory, "caravan.db")}",
        ["Caravan:Secrets:MasterKeyFile"] = Path.Combine(directory, "master.key"),
    };

    private static HttpClient Client(CaravanApp app, string key)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    private static async Task<string> CreateKeyAsync(string directory, string organization)
    {
        var result = await RunAsync(directory, "keys", "create", "--org", organization);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.StdoutLines[^1];
    }

    private static async Task<List<string[]>> ListAsync(string directory)
    {
        var result = await RunAsync(directory, "keys", "list");
        Assert.True(result.ExitCode == 0, result.ToString());
        return [.. result.StdoutLines.Select(line => line.Split('\t'))];
    }

    /// <summary>Runs <c>dotnet Caravan.Api.dll args</c> on the store in <paramref name="directory"/>; killed after a minute.</summary>
    private static async Task<ProcessResult> RunAsync(string directory, params string[] args)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Caravan.Api.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // Only this test's settings: nothing inherited may point the program at another store.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("Caravan__", StringComparison.OrdinalIgnoreCase)
            || k.StartsWith("ConnectionStrings__", StringComparison.OrdinalIgnoreCase) || k.StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(name);
        }

        foreach (var (key, value) in SqliteStore(directory))
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        process.StandardInput.Close();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(Timeout);
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{string.Join(' ', args)}` did not finish within {Timeout.TotalSeconds} s and was killed.");
        }

        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }

    private static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath && File.Exists(hostPath))
        {
            return hostPath;
        }

        var current = Environment.ProcessPath;
        return current is not null && Path.GetFileNameWithoutExtension(current) == "dotnet" ? current : "dotnet";
    }

    private sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
    {
        public IReadOnlyList<string> StdoutLines => [.. Stdout.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0)];

        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
    }

    [GeneratedRegex("^cvn_[0-9A-Za-z]{43}$")]
    private static partial Regex KeyPattern();

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")]
    private static partial Regex Rfc3339Utc();
}
