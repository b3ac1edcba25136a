using System.Net;
using System.Text.RegularExpressions;
using Caravan.Api.Data;
using Caravan.Api.Secrets;
using Caravan.Api.Tests.Files;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Tests.Secrets;

/// <summary>
/// <c>secrets rotate</c>, run as its own process beside a serving Caravan: secrets stay usable
/// before, during and after; a re-run finishes an interrupted rotation; the old key can go.
/// </summary>
public sealed partial class RotationTests
{
    private const string Postgres = """{"type": "postgres", "hostname": "db.example.com", "username": "u", "password": "pw-start", "database_name": "d"}""";

    [Fact]
    public async Task With_a_key_file_a_rotation_runs_while_the_server_serves_and_the_old_key_can_then_go()
    {
        string keyFile;
        Dictionary<string, string?> settings;
        string directory;
        long postgresId, snowflakeId;
        string publicKey;
        string lastPassword;
        await using (var app = new OwnCaravan())
        {
            var org = await app.NewOrganizationAsync();
            postgresId = await org.Http.CreateSourceAsync(Postgres);
            var snowflake = await org.Http.PostJsonAsync("/api/v1/sources/", """{"type": "snowflake", "account": "xy12345", "user": "bob"}""")
                .Expect(HttpStatusCode.OK);
            snowflakeId = snowflake["id"]!.GetValue<long>();
            publicKey = PublicKeyPattern().Match(snowflake["public_key_sql"]!.GetValue<string>()).Groups[1].Value;
            for (var i = 0; i < 230; i++)
            {
                await org.Http.CreateSourceAsync($$"""{"type": "motherduck", "database_name": "db{{i}}", "token": "token-{{i}}"}""");
            }

            var oldKey = app.Services.GetRequiredService<SecretProtector>().CurrentKeyId;
            keyFile = app.Settings["Caravan:Secrets:MasterKeyFile"]!;
            settings = new(app.Settings);
            directory = app.DataDirectory;

            // While the rotation runs in its own process, the server keeps reading and writing.
            using var stop = new CancellationTokenSource();
            var traffic = Task.Run(async () =>
            {
                var round = 0;
                var password = "pw-start";
                while (!stop.IsCancellationRequested)
                {
                    round++;
                    password = $"pw-during-{round}";
                    await org.Http.PatchJsonAsync($"/api/v1/sources/{postgresId}/update-config/", $$"""{"password": "{{password}}"}""").Expect(HttpStatusCode.OK);
                    await org.Http.GetAsync(new Uri($"/api/v1/sources/{snowflakeId}/", UriKind.Relative)).Expect(HttpStatusCode.OK);
                }

                return password;
            });

            var rotation = await CaravanProcess.RunAsync(settings, directory, "secrets", "rotate");
            await stop.CancelAsync();
            lastPassword = await traffic;

            Assert.True(rotation.ExitCode == 0, rotation.Error);
            Assert.Matches("Added master key [0-9a-f]{8}", rotation.Output);
            var newKey = app.Services.GetRequiredService<SecretProtector>().CurrentKeyId;
            Assert.NotEqual(oldKey, newKey);
            Assert.Equal(lastPassword, await app.RevealAsync(postgresId, "password"));

            // Behaviour that needs the re-encrypted private key: a public key is checked against it.
            await org.Http.PatchJsonAsync($"/api/v1/sources/{snowflakeId}/update-config/", $$"""{"public_key": "{{publicKey}}"}""")
                .Expect(HttpStatusCode.OK);

            // 232 secrets: the PostgreSQL password, the Snowflake private key and 230 MotherDuck tokens.
            var status = await CaravanProcess.RunAsync(settings, directory, "secrets", "status");
            Assert.Contains($"{newKey}\tcurrent\t232", status.Output, StringComparison.Ordinal);
            Assert.Contains($"{oldKey}\tprevious\t0", status.Output, StringComparison.Ordinal);
        }

        // Retire the old key: keep only the newest line of the ring.
        var lines = (await File.ReadAllLinesAsync(keyFile)).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Equal(2, lines.Count);
        await File.WriteAllLinesAsync(keyFile, [lines[^1]]);

        await using var restarted = new OwnCaravan(directory, settings);
        Assert.Equal(lastPassword, await restarted.RevealAsync(postgresId, "password"));
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", await restarted.RevealAsync(snowflakeId, "private_key"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_keys_from_configuration_a_second_run_is_a_no_op_and_the_old_key_can_go()
    {
        var first = SecretsTestKeys.NewBase64Key();
        var second = SecretsTestKeys.NewBase64Key();
        var directory = CaravanApp.NewDataDirectory();
        Dictionary<string, string?> settings;
        long id;
        await using (var app = new OwnCaravan(directory, new Dictionary<string, string?> { ["Caravan:Secrets:MasterKey"] = first }))
        {
            var org = await app.NewOrganizationAsync();
            id = await org.Http.CreateSourceAsync(Postgres);
            settings = new(app.Settings);
        }

        // The operator makes the new key current and keeps the old one for decryption.
        settings["Caravan:Secrets:MasterKey"] = second;
        settings["Caravan:Secrets:PreviousMasterKeys"] = first;
        await using (var app = new OwnCaravan(directory, settings))
        {
            Assert.Equal("pw-start", await app.RevealAsync(id, "password"));

            var rotation = await CaravanProcess.RunAsync(settings, directory, "secrets", "rotate");
            Assert.True(rotation.ExitCode == 0, rotation.Error);
            Assert.Contains("Re-encrypted 1 secret(s) in 1 source(s)", rotation.Output, StringComparison.Ordinal);

            var again = await CaravanProcess.RunAsync(settings, directory, "secrets", "rotate");
            Assert.Contains("Re-encrypted 0 secret(s) in 0 source(s)", again.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("Added", again.Output, StringComparison.Ordinal);
        }

        settings.Remove("Caravan:Secrets:PreviousMasterKeys");
        await using var retired = new OwnCaravan(directory, settings);
        Assert.Equal("pw-start", await retired.RevealAsync(id, "password"));
        Assert.False(File.Exists(Path.Combine(directory, "master.key")));
    }

    [Fact]
    public async Task A_rotation_rewraps_FILE_sources_data_keys_and_their_files_are_read_once_the_old_key_is_gone()
    {
        string keyFile;
        Dictionary<string, string?> settings;
        string directory;
        long id;
        string apiKey;
        await using (var app = new OwnCaravan())
        {
            var org = await app.NewOrganizationAsync();
            apiKey = org.Key;
            id = await org.Http.UploadFilesAsync(
                ("ledger.csv", FileKit.Utf8("id,city,amount\n1,\"Zürich, CH\",2.5\n2,Kraków,4\n")),
                ("book.xlsx", TestFiles.Bytes(path => TestFiles.Xlsx(path, ("plan", [["units"], [3.0], [4.0]])))));
            await org.Http.ReadyFilesAsync(id);
            var oldKey = app.Services.GetRequiredService<SecretProtector>().CurrentKeyId;
            Assert.Equal(oldKey, await DataKeyIdAsync(app, id));
            keyFile = app.Settings["Caravan:Secrets:MasterKeyFile"]!;
            settings = new(app.Settings);
            directory = app.DataDirectory;

            var rotation = await CaravanProcess.RunAsync(settings, directory, "secrets", "rotate");

            Assert.True(rotation.ExitCode == 0, rotation.Error);
            var newKey = app.Services.GetRequiredService<SecretProtector>().CurrentKeyId;
            Assert.NotEqual(oldKey, newKey);
            Assert.Equal(newKey, await DataKeyIdAsync(app, id));
            var status = await CaravanProcess.RunAsync(settings, directory, "secrets", "status");
            Assert.Contains($"{oldKey}\tprevious\t0", status.Output, StringComparison.Ordinal);
        }

        var lines = (await File.ReadAllLinesAsync(keyFile)).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Equal(2, lines.Count);
        await File.WriteAllLinesAsync(keyFile, [lines[^1]]);

        // A new process, with no data key in memory and the old master key gone: the files still open.
        await using var retired = new OwnCaravan(directory, settings);
        using var http = retired.CreateClient();
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey);
        var answer = await http.QueryAsync(id, "SELECT (SELECT string_agg(city, '|' ORDER BY id) FROM ledger), (SELECT sum(amount) FROM ledger), (SELECT sum(units) FROM book_plan)", HttpStatusCode.OK);
        var row = answer["rows"]![0]!;
        Assert.Equal("Zürich, CH|Kraków", row[0]!.GetValue<string>());
        Assert.Equal("[6.5,7]", $"[{row[1]!.ToJsonString()},{row[2]!.ToJsonString()}]");
        Assert.True((await http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK))["ok"]!.GetValue<bool>());

        // And files added now are encrypted and converted under the same data key.
        using (var more = FileKit.Form(null, ("more.csv", FileKit.Utf8("n\n5\n"))))
        {
            await http.UploadAsync(more, FileKit.FilesUrl(id)).Expect(HttpStatusCode.OK);
        }

        await http.ReadyFilesAsync(id);
        Assert.Equal("[[5,6.5]]", (await http.QueryAsync(id, "SELECT (SELECT n FROM more), (SELECT sum(amount) FROM ledger)", HttpStatusCode.OK))["rows"]!.ToJsonString());
    }

    /// <summary>The master key id a FILE source's data key is encrypted under, as the store holds it.</summary>
    private static async Task<string> DataKeyIdAsync(CaravanApp app, long sourceId)
    {
        await using var connection = await app.Services.GetRequiredService<Database>().OpenAsync();
        return (string)(await connection.Command("SELECT key_id FROM file_data_keys WHERE source_id = @id").With("@id", sourceId).ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task An_interrupted_rotation_is_finished_by_running_it_again_without_another_key()
    {
        await using var app = new OwnCaravan();
        var org = await app.NewOrganizationAsync();
        var ids = new List<long>();
        for (var i = 0; i < 150; i++)
        {
            ids.Add(await org.Http.CreateSourceAsync($$"""{"type": "motherduck", "database_name": "db{{i}}", "token": "token-{{i}}"}"""));
        }

        // Stop the first rotation right after its first batch commits, as a crash would.
        using var interrupt = new CancellationTokenSource();
        var rotation = new SecretRotation(
            app.Services.GetRequiredService<Database>(),
            app.Services.GetRequiredService<SecretProtector>(),
            app.Services.GetRequiredService<IOptions<SecretsOptions>>(),
            new CancelOnProgress(interrupt),
            app.Services.GetRequiredService<Caravan.Api.Revisions.AuditLog>(),
            app.Services.GetServices<ServerKeys.KeyTable>());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => rotation.RotateAsync(interrupt.Token));

        var protector = app.Services.GetRequiredService<SecretProtector>();
        var counts = await rotation.CountByKeyAsync();
        Assert.Equal(2, counts.Count);
        Assert.True(counts[protector.CurrentKeyId] > 0);

        var resumed = await CaravanProcess.RunAsync(app.Settings, app.DataDirectory, "secrets", "rotate");
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.DoesNotContain("Added", resumed.Output, StringComparison.Ordinal);
        counts = await rotation.CountByKeyAsync();
        Assert.Equal(150, counts[protector.CurrentKeyId]);
        Assert.Single(counts);
        foreach (var id in ids.Take(5).Concat(ids.TakeLast(5)))
        {
            Assert.StartsWith("token-", await app.RevealAsync(id, "token"), StringComparison.Ordinal);
        }
    }


    [GeneratedRegex("RSA_PUBLIC_KEY='([^']+)'")]
    private static partial Regex PublicKeyPattern();

    /// <summary>Cancels the rotation when it reports its first committed batch.</summary>
    private sealed class CancelOnProgress(CancellationTokenSource source) : ILogger<SecretRotation>
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (formatter(state, exception).StartsWith("Rotation reached", StringComparison.Ordinal))
            {
                source.Cancel();
            }
        }
    }
}
