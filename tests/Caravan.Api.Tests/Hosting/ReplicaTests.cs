using System.Net;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Hosting;

/// <summary>
/// Two real Caravan processes on one store (PostgreSQL in the PostgreSQL lane, one SQLite file in
/// the SQLite lane), as replicas behind a load balancer would run.
/// </summary>
public sealed class ReplicaTests : IAsyncLifetime
{
    private readonly string _directory = CaravanApp.NewDataDirectory();
    private readonly Dictionary<string, string?> _settings;
    private CaravanProcess.Server? _first;
    private CaravanProcess.Server? _second;

    public ReplicaTests()
    {
        _settings = TestStore.NewStoreSettings(_directory);
        _settings["Caravan:Secrets:MasterKeyFile"] = Path.Combine(_directory, "master.key");
    }

    public async ValueTask InitializeAsync()
    {
        // The key file and the store exist before either replica starts, as in a real deployment.
        var migrated = await CaravanProcess.RunAsync(_settings, _directory, "migrate");
        Assert.True(migrated.ExitCode == 0, migrated.Error);
        _first = await CaravanProcess.Server.StartAsync(_settings, _directory);
        _second = await CaravanProcess.Server.StartAsync(_settings, _directory);
    }

    public async ValueTask DisposeAsync()
    {
        _first?.Dispose();
        _second?.Dispose();
        await Task.CompletedTask;
    }

    [Fact]
    public async Task A_source_created_on_one_replica_is_readable_on_the_other_at_once()
    {
        var key = await NewKeyAsync("readers");
        using var first = _first!.Client(key);
        using var second = _second!.Client(key);

        var id = await first.CreateSourceAsync("""{"type": "mysql", "hostname": "db", "username": "u", "password": "p", "database_name": "d"}""");
        var read = await second.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.OK);

        Assert.Equal(id, read["id"]!.GetValue<long>());
        Assert.Equal("MYSQL", read["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_revoked_key_is_refused_by_every_replica_on_the_next_request()
    {
        var (keyId, key) = await NewKeyWithIdAsync("revokers");
        using var first = _first!.Client(key);
        using var second = _second!.Client(key);
        await first.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK);
        await second.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK);

        var revoked = await CaravanProcess.RunAsync(_settings, _directory, "keys", "revoke", keyId);
        Assert.True(revoked.ExitCode == 0, revoked.Error);

        var refusedBySecond = await second.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.Unauthorized);
        var refusedByFirst = await first.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.Unauthorized);
        Assert.Equal("""{"detail":"Invalid API key."}""", refusedBySecond.Compact());
        Assert.Equal("""{"detail":"Invalid API key."}""", refusedByFirst.Compact());
    }

    [Fact]
    public async Task A_token_minted_on_one_replica_works_on_the_other_and_dies_with_its_key_on_both()
    {
        var (keyId, key) = await NewKeyWithIdAsync("token-minters");
        using var first = _first!.Client(key);
        var id = await first.CreateSourceAsync("""{"type": "mysql", "hostname": "db", "username": "u", "password": "p", "database_name": "d"}""");
        var minted = await first.PostJsonAsync("/api/v1/token", $$"""{"uid": "alice", "srcs": ["{{id}}"]}""").Expect(HttpStatusCode.OK);
        var token = minted["access_token"]!.GetValue<string>();
        using var onFirst = _first.Client(token);
        using var onSecond = _second!.Client(token);
        foreach (var client in new[] { onFirst, onSecond })
        {
            await client.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.OK);
            var list = await client.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK);
            Assert.Equal(1, list["count"]!.GetValue<long>());
        }

        var revoked = await CaravanProcess.RunAsync(_settings, _directory, "keys", "revoke", keyId);
        Assert.True(revoked.ExitCode == 0, revoked.Error);

        foreach (var client in new[] { onSecond, onFirst })
        {
            var hot = await client.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative)).Expect(HttpStatusCode.Unauthorized);
            var list = await client.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.Unauthorized);
            Assert.Equal("""{"detail":"Invalid token."}""", hot.Compact());
            Assert.Equal("""{"detail":"Invalid token."}""", list.Compact());
        }
    }

    [Fact]
    public async Task A_signing_key_rotated_on_the_command_line_signs_on_both_replicas_and_both_verify_old_and_new_tokens()
    {
        var key = await NewKeyAsync("token-rotators");
        using var first = _first!.Client(key);
        using var second = _second!.Client(key);
        var old = (await first.PostJsonAsync("/api/v1/token", """{"uid": "alice"}""").Expect(HttpStatusCode.OK))["access_token"]!.GetValue<string>();

        var rotated = await CaravanProcess.RunAsync(_settings, _directory, "tokens", "rotate-signing-key");
        Assert.True(rotated.ExitCode == 0, rotated.Error);

        var fromSecond = (await second.PostJsonAsync("/api/v1/token", """{"uid": "alice"}""").Expect(HttpStatusCode.OK))["access_token"]!.GetValue<string>();
        var fromFirst = (await first.PostJsonAsync("/api/v1/token", """{"uid": "alice"}""").Expect(HttpStatusCode.OK))["access_token"]!.GetValue<string>();
        Assert.Equal(Tokens.TokenKit.Kid(fromFirst), Tokens.TokenKit.Kid(fromSecond));
        Assert.NotEqual(Tokens.TokenKit.Kid(old), Tokens.TokenKit.Kid(fromFirst));
        foreach (var token in new[] { old, fromFirst, fromSecond })
        {
            foreach (var server in new[] { _first, _second })
            {
                using var client = server.Client(token);
                await client.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK);
            }
        }
    }

    [Fact]
    public async Task Concurrent_updates_through_both_replicas_keep_every_fields_last_value()
    {
        var key = await NewKeyAsync("writers");
        using var first = _first!.Client(key);
        using var second = _second!.Client(key);
        var id = await first.CreateSourceAsync("""{"type": "snowflake", "account": "xy12345", "user": "bob", "password": "pw-0"}""");
        // Not "account": changing it while a password is stored is the rebind guard's (RebindGuardTests).
        string[] fields = ["warehouse", "database", "role", "user", "password"];

        for (var round = 0; round < 6; round++)
        {
            var r = round;
            await Task.WhenAll(fields.Select((field, i) => (i % 2 == 0 ? first : second).PatchJsonAsync(
                $"/api/v1/sources/{id}/update-config/", $$"""{"{{field}}": "{{field}}-{{r}}"}""").Expect(HttpStatusCode.OK)));
        }

        // Read back through the config-bearing behaviour both replicas share: the stored row.
        await using var reader = new OwnCaravan(_directory, _settings);
        var stored = await reader.StoredSourceAsync(id);
        foreach (var field in fields.Where(f => f != "password"))
        {
            Assert.Equal($"{field}-5", stored.Settings[field]!.GetValue<string>());
        }

        Assert.Equal("password-5", await reader.RevealAsync(id, "password"));
    }

    private async Task<string> NewKeyAsync(string organization) => (await NewKeyWithIdAsync(organization)).Key;

    private async Task<(string Id, string Key)> NewKeyWithIdAsync(string organization)
    {
        var created = await CaravanProcess.RunAsync(_settings, _directory, "keys", "create", "--org", organization);
        Assert.True(created.ExitCode == 0, created.Error);
        var lines = created.Output.Trim().Split('\n');
        var listed = await CaravanProcess.RunAsync(_settings, _directory, "keys", "list", "--org", organization);
        var id = listed.Output.Trim().Split('\n').Select(l => l.Split('\t')).Single(c => lines[^1].StartsWith(c[2], StringComparison.Ordinal))[0];
        return (id, lines[^1]);
    }
}
