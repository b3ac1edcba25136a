using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Auth;
using Caravan.Api.Data;
using Caravan.Api.Hosting;
using Caravan.Api.Revisions;
using Caravan.Api.Secrets;
using Caravan.Api.Connectors;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Sources;

/// <summary>
/// Writes sources: validation against the stored state, merge, encryption and the write, all in
/// one transaction that holds the row, so concurrent changes of different fields all survive.
/// Each write appends its revision in that transaction and is audited once it committed.
/// </summary>
public sealed class SourceWriter(Database database, SecretProtector protector, TimeProvider time, AuditLog audit, IOptions<SecurityOptions> security)
{
    public sealed record Created(SourceRow Row, string? PublicKeySql);

    /// <summary>
    /// Creates a source from checked input; the type's own create work runs here. With an
    /// Idempotency-Key <paramref name="claim"/>, the key is taken first in the same transaction and
    /// null is returned, with nothing created, when another request holds it.
    /// </summary>
    public async Task<Created?> CreateAsync(
        Caller caller, SourceType type, string accountName, SourceChange change, string? publicKeySql, IdempotencyClaim? claim,
        CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        if (claim is not null && !await claim.TakeAsync(connection, transaction, now, cancellationToken))
        {
            await transaction.RollbackAsync(cancellationToken);
            return null;
        }

        var id = await SourceRows.InsertAsync(connection, transaction, caller.OrganizationId, type.Name, accountName, now, cancellationToken);
        var empty = new SourceRow(id, caller.OrganizationId, type.Name, accountName, [], new Dictionary<string, SecretEntry>(), false, 1, now, now);
        var row = Apply(type, empty, change, accountName, now);
        await SourceRows.UpdateAsync(connection, transaction, row with { Version = 1 }, cancellationToken);
        var revision = await SourceRevisions.AppendAsync(
            connection, transaction, Revision.By(caller, id, RevisionActions.Create, now, RevisionChanges.Between(type, null, row)), cancellationToken);
        var created = new Created(row with { Version = 1 }, publicKeySql);
        if (claim is not null)
        {
            await claim.RecordAsync(connection, transaction, created, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        audit.Record(revision);
        return created;
    }

    /// <summary>
    /// update-config: checks <paramref name="body"/> against the stored type and configuration and
    /// merges it. Returns null when the source does not exist for the caller.
    /// </summary>
    public async Task<WriteOutcome> UpdateConfigAsync(Caller caller, long id, JsonObject body, string? ifMatch, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        var stored = await SourceRows.FindAsync(database, connection, caller.OrganizationId, id, transaction, cancellationToken);
        if (stored is null)
        {
            return WriteOutcome.NotFound;
        }

        if (!EntityTags.Satisfies(ifMatch, EntityTags.For(stored)))
        {
            return WriteOutcome.Stale(stored);
        }

        var (type, accountName, change, errors) = CheckUpdate(stored, body);
        if (!errors.IsEmpty)
        {
            return WriteOutcome.Invalid(errors);
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var row = Apply(type, stored, change, accountName ?? stored.AccountName, now) with { Version = stored.Version + 1 };
        await SourceRows.UpdateAsync(connection, transaction, row, cancellationToken);
        var revision = await SourceRevisions.AppendAsync(
            connection, transaction, Revision.By(caller, id, RevisionActions.Update, now, RevisionChanges.Between(type, stored, row)), cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        audit.Record(revision);
        return WriteOutcome.Written(row);
    }

    /// <summary>PUT/PATCH on the source: only the display name changes.</summary>
    public async Task<WriteOutcome> RenameAsync(Caller caller, long id, string? accountName, string? ifMatch, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        var stored = await SourceRows.FindAsync(database, connection, caller.OrganizationId, id, transaction, cancellationToken);
        if (stored is null)
        {
            return WriteOutcome.NotFound;
        }

        if (!EntityTags.Satisfies(ifMatch, EntityTags.For(stored)))
        {
            return WriteOutcome.Stale(stored);
        }

        if (accountName is null)
        {
            return WriteOutcome.Written(stored);
        }

        var row = stored with
        {
            AccountName = accountName,
            Version = stored.Version + 1,
            UpdatedAt = time.GetUtcNow().ToUnixTimeMilliseconds(),
        };
        await SourceRows.UpdateAsync(connection, transaction, row, cancellationToken);
        var changes = RevisionChanges.Between(SourceTypes.Find(stored.Type)!, stored, row);
        var revision = await SourceRevisions.AppendAsync(
            connection, transaction, Revision.By(caller, id, RevisionActions.Update, row.UpdatedAt, changes), cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        audit.Record(revision);
        return WriteOutcome.Written(row);
    }

    public async Task<WriteOutcome> DeleteAsync(Caller caller, long id, string? ifMatch, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        var stored = await SourceRows.FindAsync(database, connection, caller.OrganizationId, id, transaction, cancellationToken);
        if (stored is null)
        {
            return WriteOutcome.NotFound;
        }

        if (!EntityTags.Satisfies(ifMatch, EntityTags.For(stored)))
        {
            return WriteOutcome.Stale(stored);
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await SourceRows.DeleteAsync(connection, transaction, caller.OrganizationId, id, now, cancellationToken);
        var revision = await SourceRevisions.AppendAsync(
            connection, transaction, Revision.By(caller, id, RevisionActions.Delete, now, RevisionChanges.OfDelete(SourceTypes.Find(stored.Type)!, stored)), cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        audit.Record(revision);
        return WriteOutcome.Written(stored);
    }

    /// <summary>
    /// What update-config would store, checked and merged in memory but not written: for checks
    /// that need the network (such as verifying selected schemas), which must not hold a row lock.
    /// </summary>
    public async Task<(SourceConnection? Connection, ValidationErrors? Errors)> PreviewUpdateAsync(
        Caller caller, long id, JsonObject body, CancellationToken cancellationToken)
    {
        var stored = await FindAsync(caller, id, cancellationToken);
        if (stored is null)
        {
            return (null, null);
        }

        var (type, _, change, errors) = CheckUpdate(stored, body);
        if (!errors.IsEmpty)
        {
            return (null, errors);
        }

        var secrets = Reveal(stored.Id, stored.Secrets);
        foreach (var (field, value) in change.Secrets)
        {
            if (value is null)
            {
                secrets.Remove(field);
            }
            else
            {
                secrets[field] = value;
            }
        }

        return (new SourceConnection(type, SourceBodies.MergeSettings(stored.Settings, change), secrets), null);
    }

    /// <summary>The stored configuration of a source, secrets decrypted, for a test, discovery or query.</summary>
    public async Task<SourceConnection?> ConnectionAsync(Caller caller, long id, CancellationToken cancellationToken)
    {
        var stored = await FindAsync(caller, id, cancellationToken);
        return stored is null ? null : Connect(stored);
    }

    /// <summary>The configuration of a stored source, secrets decrypted.</summary>
    public SourceConnection Connect(SourceRow row) => new(SourceTypes.Find(row.Type)!, row.Settings, Reveal(row.Id, row.Secrets));

    /// <summary>An unsaved configuration, checked as a create would check it.</summary>
    public static SourceConnection Unsaved(SourceType type, SourceChange change) =>
        new(type,
            SourceBodies.MergeSettings([], change),
            change.Secrets.Where(s => s.Value is not null).ToDictionary(s => s.Key, s => s.Value!, StringComparer.Ordinal));

    /// <summary>
    /// The configuration of a source as stored, secrets decrypted. The settings are read through
    /// once here, so the connection can be shared by concurrent readers (a parsed JSON object
    /// builds its members on first use).
    /// </summary>
    public SourceConnection Connect(StoredSource source)
    {
        var settings = JsonNode.Parse(source.Settings)!.AsObject();
        Materialize(settings);
        return new SourceConnection(SourceTypes.Find(source.Type)!, settings, Reveal(source.Id, SourceRows.ReadSecrets(source.Secrets)));
    }

    /// <summary>The organization's live source as stored (settings and secrets as their JSON text).</summary>
    public async Task<StoredSource?> FindStoredAsync(Caller caller, long id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await SourceRows.FindStoredAsync(connection, caller.OrganizationId, id, cancellationToken);
    }

    public async Task<SourceRow?> FindAsync(Caller caller, long id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await SourceRows.FindAsync(database, connection, caller.OrganizationId, id, null, cancellationToken);
    }

    private static void Materialize(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject members:
                foreach (var (_, member) in members)
                {
                    Materialize(member);
                }

                break;
            case JsonArray items:
                foreach (var item in items)
                {
                    Materialize(item);
                }

                break;
        }
    }

    private Dictionary<string, string> Reveal(long sourceId, IReadOnlyDictionary<string, SecretEntry> secrets) =>
        secrets.ToDictionary(s => s.Key, s => protector.Unprotect(sourceId, s.Key, s.Value.ToStoredSecret()), StringComparer.Ordinal);

    private (SourceType Type, string? AccountName, SourceChange Change, ValidationErrors Errors) CheckUpdate(SourceRow stored, JsonObject body)
    {
        var type = SourceTypes.Find(stored.Type)!;
        var errors = new ValidationErrors();
        var accountName = SourceBodies.ReadAccountName(body, errors, required: false);
        if (body.TryGetPropertyValue(SourceBodies.TypeField, out var sentType)
            && !(sentType is JsonValue value && value.TryGetValue<string>(out var typeName) && SourceTypes.Find(typeName) == type))
        {
            errors.Add(SourceBodies.TypeField, "The type of a source cannot be changed.");
        }

        var change = SourceBodies.ReadFields(type, body, ChangeMode.Update, errors, SourceBodies.AccountName, SourceBodies.TypeField);
        var view = View(stored);
        // Every problem together, as on create: the type's rules run whatever the fields said.
        type.Check(change, view, errors);

        if (!security.Value.AllowSecretRebind)
        {
            RebindGuard.Check(type, change, view, errors);
        }

        return (type, accountName, change, errors);
    }

    /// <summary>
    /// Whether <paramref name="entry"/> already holds <paramref name="plaintext"/>. Resending the
    /// stored value is not a change: the entry, its <c>updated_at</c> and the revision stay as they
    /// were. A stored value that no longer decrypts is simply replaced.
    /// </summary>
    private bool Holds(long id, string field, SecretEntry entry, string plaintext)
    {
        try
        {
            return CryptographicOperations.FixedTimeEquals(
                Encoding.UTF8.GetBytes(protector.Unprotect(id, field, entry.ToStoredSecret())), Encoding.UTF8.GetBytes(plaintext));
        }
        catch (SecretDecryptionException)
        {
            return false;
        }
    }

    /// <summary>A view of a stored source whose secrets are decrypted only if a rule asks for one.</summary>
    public ConfigView View(SourceRow row) =>
        new(row.Settings, row.Secrets.Keys.ToHashSet(StringComparer.Ordinal),
            field => protector.Unprotect(row.Id, field, row.Secrets[field].ToStoredSecret()));

    private SourceRow Apply(SourceType type, SourceRow stored, SourceChange change, string accountName, long now)
    {
        var settings = SourceBodies.MergeSettings(stored.Settings, change);
        var secrets = new Dictionary<string, SecretEntry>(stored.Secrets, StringComparer.Ordinal);
        foreach (var (field, plaintext) in change.Secrets)
        {
            if (plaintext is null)
            {
                secrets.Remove(field);
            }
            else if (!(stored.Secrets.TryGetValue(field, out var held) && Holds(stored.Id, field, held, plaintext)))
            {
                var sealedSecret = protector.Protect(stored.Id, field, plaintext);
                secrets[field] = new SecretEntry(sealedSecret.KeyId, sealedSecret.Ciphertext, now);
            }
        }

        var merged = new ConfigView(settings, secrets.Keys.ToHashSet(StringComparer.Ordinal), _ => null);
        return stored with
        {
            AccountName = accountName,
            Settings = settings,
            Secrets = secrets,
            IsFullyConfigured = type.IsFullyConfigured(merged),
            UpdatedAt = now,
        };
    }
}

/// <summary>The outcome of a write: written, not found, refused input, or a stale <c>If-Match</c>.</summary>
public sealed record WriteOutcome(SourceRow? Row, ValidationErrors? Errors, string? CurrentTag = null)
{
    public static WriteOutcome NotFound { get; } = new(null, null);

    public static WriteOutcome Invalid(ValidationErrors errors) => new(null, errors);

    public static WriteOutcome Written(SourceRow row) => new(row, null);

    public static WriteOutcome Stale(SourceRow current) => new(null, null, EntityTags.For(current));
}
