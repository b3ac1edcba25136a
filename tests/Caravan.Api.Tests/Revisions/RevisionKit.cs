using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Caravan.Api.Auth;
using Caravan.Api.Data;
using Caravan.Api.Revisions;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Revisions;

/// <summary>A revision as the store holds it, read behind the API.</summary>
public sealed record StoredRevision(long Number, long OrganizationId, long At, string? KeyId, string Action, string Changes);

/// <summary>Reading revisions over HTTP and from the store, and checking them field by field.</summary>
internal static partial class RevisionKit
{
    public static string Url(long id) => SourceRoutes.Url(id, "revisions");

    public static async Task<JsonNode> ListAsync(this OrgClient org, long id, string query = "") =>
        await org.Http.GetAsync(new Uri(Url(id) + query, UriKind.Relative)).Expect(HttpStatusCode.OK);

    public static async Task<JsonNode> NewestAsync(this OrgClient org, long id) =>
        (await org.ListAsync(id, "?page_size=1"))["results"]![0]!;

    /// <summary>A second API key of the same organization, and a client that sends it.</summary>
    public static async Task<OrgClient> SecondKeyAsync(this CaravanApp app, OrgClient org)
    {
        var (keyId, key) = await app.Services.GetRequiredService<ApiKeys>().CreateAsync(org.Organization);
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return new OrgClient(org.Organization, keyId, key, client);
    }

    /// <summary>Runs a request and returns the whole seconds it ran within, as <c>at</c> would show them.</summary>
    public static async Task<(DateTimeOffset From, DateTimeOffset To)> TimedAsync(Func<Task> request)
    {
        var from = DateTimeOffset.UtcNow;
        await request();
        var to = DateTimeOffset.UtcNow;
        return (from.AddTicks(-(from.Ticks % TimeSpan.TicksPerSecond)), to);
    }

    /// <summary>
    /// Asserts every part of one revision; <paramref name="changes"/> is the exact JSON expected,
    /// keys in order.
    /// </summary>
    public static void AssertRevision(
        JsonNode revision, long number, string action, OrgClient actor, (DateTimeOffset From, DateTimeOffset To) window, string changes) =>
        AssertRevision(revision, number, action, actor.Organization, actor.KeyId, window, changes);

    public static void AssertRevision(
        JsonNode revision, long number, string action, string organization, string? keyId, (DateTimeOffset From, DateTimeOffset To) window, string changes)
    {
        var json = revision.AsObject();
        Assert.Equal(["number", "at", "actor", "action", "changes"], json.Select(p => p.Key));
        Assert.Equal(number, json["number"]!.GetValue<long>());
        Assert.Equal(action, json["action"]!.GetValue<string>());
        Assert.Equal(
            new JsonObject { ["org"] = organization, ["key_id"] = keyId }.Compact(),
            json["actor"]!.Compact());
        var at = json["at"]!.GetValue<string>();
        Assert.Matches(RfcSeconds(), at);
        var time = DateTimeOffset.Parse(at, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(time, window.From, window.To);
        Assert.Equal(JsonNode.Parse(changes)!.Compact(), json["changes"]!.Compact());
    }

    /// <summary>Every revision of a source, oldest first, straight from the store (deleted sources too).</summary>
    public static async Task<List<StoredRevision>> StoredRevisionsAsync(this CaravanApp app, long sourceId)
    {
        var database = app.Services.GetRequiredService<Database>();
        await using var connection = await database.OpenAsync();
        await using var command = connection.Command(
            "SELECT number, organization_id, at, key_id, action, changes FROM source_revisions WHERE source_id = @id ORDER BY number").With("@id", sourceId);
        await using var reader = await command.ExecuteReaderAsync();
        var revisions = new List<StoredRevision>();
        while (await reader.ReadAsync())
        {
            revisions.Add(new StoredRevision(
                reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.IsDBNull(3) ? null : reader.GetString(3), reader.GetString(4), reader.GetString(5)));
        }

        return revisions;
    }

    /// <summary>The audit events of one source, in the order they were written.</summary>
    public static List<LogEvent> AuditEvents(this LogSink logs, long sourceId) =>
        [.. logs.Events.Where(e => e.Category == AuditLog.Category && e.Properties.TryGetValue("SourceId", out var id) && id is long value && value == sourceId)];

    /// <summary>Asserts one audit event: its id, level and exactly the properties of the operations contract.</summary>
    public static void AssertAudit(LogEvent audit, string action, string organization, string? keyId, long sourceId, long revision, string fields)
    {
        Assert.Equal(AuditLog.Category, audit.Category);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Information, audit.Level);
        Assert.Equal(7001, audit.EventId.Id);
        Assert.Equal("SourceChanged", audit.EventId.Name);
        Assert.Equal(
            ["Action", "Fields", "KeyId", "Organization", "Revision", "SourceId", "{OriginalFormat}"],
            audit.Properties.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(action, audit.Properties["Action"]);
        Assert.Equal(organization, audit.Properties["Organization"]);
        Assert.Equal(keyId, audit.Properties["KeyId"]);
        Assert.Equal(sourceId, audit.Properties["SourceId"]);
        Assert.Equal(revision, audit.Properties["Revision"]);
        Assert.Equal(fields, audit.Properties["Fields"]);
    }

    [GeneratedRegex(Wire.RfcSecondsPattern)]
    private static partial Regex RfcSeconds();
}
