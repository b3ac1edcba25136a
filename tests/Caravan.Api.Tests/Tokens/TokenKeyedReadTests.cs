using Caravan.Api.Auth;
using Caravan.Api.Sources;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources;
using Caravan.Api.Tokens;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Tokens;

/// <summary>
/// The hot reads (GET a source, query) check a token's minting key in the same store query as the
/// read; on PostgreSQL, concurrent requests of keys and tokens share batched queries. Each must
/// still get its own caller and source, and a token only its sources.
/// </summary>
public sealed class TokenKeyedReadTests(CaravanApp app)
{
    [Fact]
    public async Task Concurrent_key_and_token_reads_get_their_own_caller_and_only_the_tokens_sources()
    {
        var reads = app.Services.GetRequiredService<KeyedReads>();
        var first = await app.NewOrganizationAsync();
        var second = await app.NewOrganizationAsync();
        var mine = await first.Http.CreateSourceAsync(Wire.Postgres);
        var alsoMine = await first.Http.CreateSourceAsync(Wire.Postgres);
        var theirs = await second.Http.CreateSourceAsync(Wire.Postgres);
        var expires = DateTimeOffset.UtcNow.AddMinutes(5);
        var narrow = new TokenGrant("alice", first.Organization, first.KeyId, TokenScope.Query, [mine], expires);
        var wide = new TokenGrant("bob", second.Organization, second.KeyId, TokenScope.Read, null, expires);
        var borrowed = new TokenGrant("eve", first.Organization, second.KeyId, TokenScope.Query, null, expires);

        static (PresentedKey Presented, long Id, string? Caller, bool Found) Lookup(PresentedKey presented, long id, string? caller, bool found) =>
            (presented, id, caller, found);

        var lookups = Enumerable.Range(0, 400).Select(i => (i % 8) switch
        {
            0 => Lookup(new PresentedKey(null, narrow), mine, first.Organization, true),
            1 => Lookup(new PresentedKey(null, narrow), alsoMine, first.Organization, false),
            2 => Lookup(new PresentedKey(null, narrow), theirs, first.Organization, false),
            3 => Lookup(new PresentedKey(null, wide), theirs, second.Organization, true),
            4 => Lookup(new PresentedKey(null, wide), mine, second.Organization, false),
            5 => Lookup(new PresentedKey(null, borrowed), mine, null, false),
            6 => Lookup(new PresentedKey(ApiKeys.Hash(first.Key), null), alsoMine, first.Organization, true),
            _ => Lookup(new PresentedKey(ApiKeys.Hash(second.Key), null), mine, second.Organization, false),
        }).ToArray();
        var results = await Task.WhenAll(lookups.Select(l => Task.Run(() => reads.FindSummaryAsync(l.Presented, l.Id, TestContext.Current.CancellationToken))));

        for (var i = 0; i < lookups.Length; i++)
        {
            var (caller, source) = results[i];
            Assert.Equal(lookups[i].Caller, caller?.OrganizationName);
            Assert.Equal(lookups[i].Found ? lookups[i].Id : null, source?.Connection.Id);
            if (caller is not null)
            {
                Assert.Same(lookups[i].Presented.Token, caller.Token);
            }
        }
    }
}
