using System.Net;
using Caravan.Api.Secrets;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Revisions;

/// <summary><c>secrets rotate</c> records a <c>rotate</c> revision for each source it re-encrypts, with no API key as actor.</summary>
public sealed class RotationRevisionTests
{
    [Fact]
    public async Task The_command_writes_a_rotate_revision_per_source_with_secrets_and_audits_it()
    {
        await using var app = new OwnCaravan();
        var org = await app.NewOrganizationAsync();
        var other = await app.NewOrganizationAsync();
        var postgres = await org.Http.CreateSourceAsync(Wire.Postgres);
        var motherDuck = await org.Http.CreateSourceAsync("""{"database_name": "md", "token": "Pw-md-token"}""", "/api/v1/sources/add/motherduck/");
        var theirs = await other.Http.CreateSourceAsync(Wire.Postgres);
        var bare = (await org.Http.PostJsonAsync("/api/v1/sources/add/", """{"account_name": "Empty", "type": "mysql"}""").Expect(HttpStatusCode.OK))["id"]!.GetValue<long>();
        var gone = await org.Http.CreateSourceAsync(Wire.Postgres);
        await org.Http.DeleteAsync(new Uri($"/api/v1/sources/{gone}/", UriKind.Relative)).Expect(HttpStatusCode.NoContent);
        var tag = await ETagAsync(org, postgres);

        // The command line logs warnings only, unless the audit category is turned on.
        var settings = new Dictionary<string, string?>(app.Settings) { ["Logging:LogLevel:Caravan.Audit"] = "Information" };
        (DateTimeOffset From, DateTimeOffset To) window = default;
        CaravanProcess.Result rotation = null!;
        window = await RevisionKit.TimedAsync(async () => rotation = await CaravanProcess.RunAsync(settings, app.DataDirectory, "secrets", "rotate"));

        Assert.True(rotation.ExitCode == 0, rotation.Error);
        Assert.Contains("Re-encrypted 3 secret(s) in 3 source(s)", rotation.Output, StringComparison.Ordinal);
        foreach (var (client, id) in new[] { (org, postgres), (org, motherDuck), (other, theirs) })
        {
            var history = await client.ListAsync(id);
            Assert.Equal(2, history["count"]!.GetValue<long>());
            RevisionKit.AssertRevision(history["results"]![0]!, 2, "rotate", client.Organization, null, window, "{}");
            Assert.Contains(
                $"Source {id} rotate by organization {client.Organization} with key : revision 2, fields []",
                rotation.Error,
                StringComparison.Ordinal);
        }

        Assert.Equal(3, CountOccurrences(rotation.Error, "Caravan.Audit[7001]"));
        Assert.Equal(1, (await org.ListAsync(bare))["count"]!.GetValue<long>());
        Assert.Equal(["create", "delete"], (await app.StoredRevisionsAsync(gone)).Select(r => r.Action));

        // The configuration did not change: neither did its version.
        Assert.Equal(tag, await ETagAsync(org, postgres));

        // With a key file every run adds a key and re-encrypts again: each is a revision of its own.
        var again = await CaravanProcess.RunAsync(settings, app.DataDirectory, "secrets", "rotate");
        Assert.True(again.ExitCode == 0, again.Error);
        Assert.Equal([3L, 2, 1], (await org.ListAsync(postgres))["results"]!.AsArray().Select(r => r!["number"]!.GetValue<long>()));
        Assert.DoesNotContain("Pw-md-token", rotation.Error + again.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_rotation_in_process_audits_each_source_with_a_null_key()
    {
        await using var app = new OwnCaravan();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync("""{"database_name": "md", "token": "Pw-md-token"}""", "/api/v1/sources/add/motherduck/");
        await org.Http.PatchJsonAsync($"/api/v1/sources/{id}/update-config/", """{"token": "Pw-md-token-2"}""").Expect(HttpStatusCode.OK);

        var report = await app.Services.GetRequiredService<SecretRotation>().RotateAsync(TestContext.Current.CancellationToken);

        Assert.Equal(1, report.Sources);
        var audits = app.Logs.AuditEvents(id);
        Assert.Equal(3, audits.Count);
        RevisionKit.AssertAudit(audits[^1], "rotate", org.Organization, null, id, 3, string.Empty);
        var stored = await app.StoredRevisionsAsync(id);
        Assert.Equal((3L, "rotate", null, "{}"), (stored[^1].Number, stored[^1].Action, stored[^1].KeyId, stored[^1].Changes));
    }

    private static async Task<string> ETagAsync(OrgClient org, long id)
    {
        using var response = await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/", UriKind.Relative));
        return response.Headers.ETag!.ToString();
    }

    private static int CountOccurrences(string text, string value)
    {
        var count = 0;
        for (var at = text.IndexOf(value, StringComparison.Ordinal); at >= 0; at = text.IndexOf(value, at + value.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
