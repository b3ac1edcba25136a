using System.Net;
using Caravan.Api.Data;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tokens;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Tokens;

/// <summary>
/// The keys that sign tokens: in the store, encrypted under the master key ring (so <c>secrets
/// rotate</c> and <c>secrets status</c> count them), rotated with <c>tokens rotate-signing-key</c>
/// while tokens signed before keep working until they expire.
/// </summary>
public sealed class SigningKeyTests
{
    [Fact]
    public async Task After_a_rotation_old_tokens_keep_working_new_ones_carry_the_new_kid_and_the_JWKS_has_both()
    {
        await using var caravan = new OwnCaravan();
        var org = await caravan.NewOrganizationAsync();
        var before = await org.MintAsync("""{"uid": "alice"}""");
        using var anonymous = caravan.CreateClient();
        Assert.Equal([TokenKit.Kid(before)], await TokenKit.JwksKidsAsync(anonymous, _ => true));

        // The command line, as an operator runs it beside the running server.
        var rotated = await CaravanProcess.RunAsync(caravan.Settings, caravan.DataDirectory, "tokens", "rotate-signing-key");

        Assert.True(rotated.ExitCode == 0, rotated.Error);
        var after = await org.MintAsync("""{"uid": "alice"}""");
        Assert.NotEqual(TokenKit.Kid(before), TokenKit.Kid(after));
        Assert.Contains($"Token signing key {TokenKit.Kid(after)} signs new tokens", rotated.Output, StringComparison.Ordinal);
        Assert.Contains($"The previous key {TokenKit.Kid(before)} stays published", rotated.Output, StringComparison.Ordinal);
        foreach (var token in new[] { before, after })
        {
            using var carrier = caravan.TokenClient(token);
            await carrier.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);
        }

        var kids = await TokenKit.JwksKidsAsync(anonymous, k => k.Count == 2);
        Assert.Equal([TokenKit.Kid(after), TokenKit.Kid(before)], kids);
    }

    [Fact]
    public async Task A_retired_key_leaves_the_JWKS_once_its_last_token_expired_and_the_next_rotation_erases_it()
    {
        var clock = new ShiftedClock();
        await using var own = new OwnCaravan();
        await using var caravan = own.WithWebHostBuilder(builder => builder.ConfigureTestServices(services => services.AddSingleton<TimeProvider>(clock)));
        var keys = caravan.Services.GetRequiredService<TokenSigningKeys>();
        var first = (await caravan.ServerKeyAsync()).Kid;
        var (second, retired) = await keys.RotateAsync(TestContext.Current.CancellationToken);
        Assert.Equal(first, retired);
        using var anonymous = caravan.CreateClient();
        Assert.Equal([second, first], await TokenKit.JwksKidsAsync(anonymous, k => k.Count == 2));

        // 900 seconds of the longest token, 30 of clock skew: published until then, gone after.
        clock.Offset = TimeSpan.FromSeconds(925);
        Assert.Equal([second, first], await TokenKit.JwksKidsAsync(anonymous, _ => true));
        clock.Offset = TimeSpan.FromSeconds(935);
        Assert.Equal([second], await TokenKit.JwksKidsAsync(anonymous, _ => true));

        var (third, _) = await keys.RotateAsync(TestContext.Current.CancellationToken);
        Assert.Equal(new[] { second, third }.Order(StringComparer.Ordinal), (await StoredKidsAsync(caravan)).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Secrets_rotate_and_status_cover_the_signing_keys_and_tokens_survive_the_master_key_rotation()
    {
        await using var caravan = new OwnCaravan();
        var org = await caravan.NewOrganizationAsync();
        var before = await org.MintAsync("""{"uid": "alice"}""");

        var status = await CaravanProcess.RunAsync(caravan.Settings, caravan.DataDirectory, "secrets", "status");
        Assert.True(status.ExitCode == 0, status.Error);
        var (oldKey, role, count) = Row(status.Output.Trim().Split('\n').Single());
        Assert.Equal(("current", "1"), (role, count));

        var rotated = await CaravanProcess.RunAsync(caravan.Settings, caravan.DataDirectory, "secrets", "rotate");
        Assert.True(rotated.ExitCode == 0, rotated.Error);
        Assert.Contains("Re-encrypted 1 server key(s)", rotated.Output, StringComparison.Ordinal);

        var rows = (await CaravanProcess.RunAsync(caravan.Settings, caravan.DataDirectory, "secrets", "status")).Output.Trim().Split('\n').Select(Row).ToList();
        Assert.Contains((oldKey, "previous", "0"), rows);
        Assert.Single(rows, r => r is { Role: "current", Count: "1" } && r.KeyId != oldKey);

        // A server started afresh decrypts the same signing key under the new master key.
        await using var restarted = new OwnCaravan(caravan.DataDirectory, new Dictionary<string, string?>(caravan.Settings));
        var again = await restarted.NewOrganizationAsync();
        var after = await again.MintAsync("""{"uid": "bob"}""");
        Assert.Equal(TokenKit.Kid(before), TokenKit.Kid(after));
        using var carrier = restarted.TokenClient(before);
        await carrier.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative), TestContext.Current.CancellationToken).Expect(HttpStatusCode.OK);

        static (string KeyId, string Role, string Count) Row(string line) => line.Split('\t') is [var id, var role, var count] ? (id, role, count) : throw new InvalidOperationException(line);
    }

    [Fact]
    public async Task Replicas_that_sign_their_first_token_at_once_share_one_key()
    {
        await using var caravan = new OwnCaravan();
        var keys = Enumerable.Range(0, 8).Select(_ => new TokenSigningKeys(
            caravan.Services.GetRequiredService<Database>(), caravan.Services.GetRequiredService<Caravan.Api.Secrets.SecretProtector>(),
            TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<TokenSigningKeys>.Instance)).ToList();

        var signed = await Task.WhenAll(keys.Select(k => Task.Run(() => k.SigningCredentialsAsync(TestContext.Current.CancellationToken))));

        Assert.Single(signed.Select(c => c.Key.KeyId).Distinct());
        Assert.Single(await StoredKidsAsync(caravan));
        keys.ForEach(k => k.Dispose());
    }

    private static async Task<List<string>> StoredKidsAsync<T>(WebApplicationFactory<T> app)
        where T : class
    {
        var database = app.Services.GetRequiredService<Database>();
        await using var connection = await database.OpenAsync(TestContext.Current.CancellationToken);
        await using var reader = await connection.Command("SELECT kid FROM token_signing_keys").ExecuteReaderAsync(TestContext.Current.CancellationToken);
        var kids = new List<string>();
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            kids.Add(reader.GetString(0));
        }

        return kids;
    }

    /// <summary>The system's clock, moved forward by <see cref="Offset"/>.</summary>
    private sealed class ShiftedClock : TimeProvider
    {
        public TimeSpan Offset { get; set; }

        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Offset;
    }
}
