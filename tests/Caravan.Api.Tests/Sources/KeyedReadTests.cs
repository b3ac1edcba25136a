using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Auth;
using Caravan.Api.Sources;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Sources;

/// <summary>
/// The routes that check their key in the same store query as their read (GET a source, query):
/// on PostgreSQL, concurrent requests share one query over many (key, id) pairs, so each answer
/// must still be the one of its own key and id — under load, across organizations, with revoked
/// keys, missing and deleted ids in the same batches.
/// </summary>
public sealed class KeyedReadTests(CaravanApp app)
{
    [Fact]
    public async Task Concurrent_reads_of_many_organizations_each_get_their_own_answer()
    {
        var orgs = new List<OrgClient>();
        var owned = new Dictionary<long, (OrgClient Owner, string Name)>();
        for (var o = 0; o < 5; o++)
        {
            var org = await app.NewOrganizationAsync();
            orgs.Add(org);
            for (var s = 0; s < 3; s++)
            {
                var name = $"{org.Organization} source {s}";
                var id = await org.Http.CreateSourceAsync(Wire.Postgres.Replace("{", $"{{\"account_name\": \"{name}\", ", StringComparison.Ordinal));
                owned[id] = (org, name);
            }
        }

        var deleted = owned.Keys.First();
        await owned[deleted].Owner.Http.DeleteAsync(new Uri($"/api/v1/sources/{deleted}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent);
        var revoked = await app.NewOrganizationAsync();
        var revokedId = await revoked.Http.CreateSourceAsync(Wire.Postgres);
        Assert.True(await app.Services.GetRequiredService<ApiKeys>().RevokeAsync(revoked.KeyId));
        var ids = owned.Keys.Append(revokedId).Append(owned.Keys.Max() + 1_000_000).ToArray();
        var callers = orgs.Append(revoked).ToArray();

        var random = new Random(4711);
        var requests = Enumerable.Range(0, 600).Select(_ => (Caller: callers[random.Next(callers.Length)], Id: ids[random.Next(ids.Length)])).ToArray();
        var answers = await Task.WhenAll(requests.Select(async r =>
        {
            var response = await r.Caller.Http.GetAsync(new Uri($"/api/v1/sources/{r.Id}/", UriKind.Relative));
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }));

        for (var i = 0; i < requests.Length; i++)
        {
            var (caller, id) = requests[i];
            var (status, body) = answers[i];
            if (caller == revoked)
            {
                Assert.Equal(HttpStatusCode.Unauthorized, status);
            }
            else if (owned.TryGetValue(id, out var source) && source.Owner == caller && id != deleted)
            {
                Assert.Equal(HttpStatusCode.OK, status);
                Assert.Equal(id, JsonNode.Parse(body)!["id"]!.GetValue<long>());
                Assert.Equal(source.Name, JsonNode.Parse(body)!["account_name"]!.GetValue<string>());
            }
            else
            {
                Assert.Equal(HttpStatusCode.NotFound, status);
                Assert.Equal(Wire.NotFound, body);
            }
        }
    }

    [Fact]
    public async Task Concurrent_whole_row_reads_get_their_own_source_and_caller()
    {
        var reads = app.Services.GetRequiredService<KeyedReads>();
        var first = await app.NewOrganizationAsync();
        var second = await app.NewOrganizationAsync();
        var mine = await first.Http.CreateSourceAsync(Wire.Postgres);
        var theirs = await second.Http.CreateSourceAsync(Wire.Postgres);
        var unknownKey = ApiKeys.Hash(Unique.ApiKey());

        var lookups = Enumerable.Range(0, 400).Select(i => (i % 5) switch
        {
            0 => (Key: ApiKeys.Hash(first.Key), Id: mine, Org: first.Organization, Found: true),
            1 => (Key: ApiKeys.Hash(second.Key), Id: theirs, Org: second.Organization, Found: true),
            2 => (Key: ApiKeys.Hash(first.Key), Id: theirs, Org: first.Organization, Found: false),
            3 => (Key: ApiKeys.Hash(second.Key), Id: mine, Org: second.Organization, Found: false),
            _ => (Key: unknownKey, Id: mine, Org: (string?)null, Found: false),
        }).ToArray();
        var results = await Task.WhenAll(lookups.Select(l => Task.Run(() => reads.FindStoredAsync(new PresentedKey(l.Key, null), l.Id, TestContext.Current.CancellationToken))));

        for (var i = 0; i < lookups.Length; i++)
        {
            var (caller, row) = results[i];
            Assert.Equal(lookups[i].Org, caller?.OrganizationName);
            Assert.Equal(lookups[i].Found ? lookups[i].Id : null, row?.Id);
            if (row is not null)
            {
                Assert.Equal(caller!.OrganizationId, row.OrganizationId);
                Assert.Equal("POSTGRES", row.Type);
                Assert.Contains("\"password\"", row.Secrets, StringComparison.Ordinal);
            }
        }
    }
}
