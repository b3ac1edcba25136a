using System.Data.Common;
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
public sealed class SourceWriter(
    Database database, SourceConnections sources, SecretProtector protector, TimeProvider time, AuditLog audit, IOptions<SecurityOptions> security)
{
    public sealed record Created(SourceRow Row, string? PublicKeySql);

    /// <summary>
    /// Creates a source from checked input; the type's own create work runs here. With an
    /// Idempotency-Key <paramref name="claim"/>, the key is taken first in the same transaction and
    /// null is returned, with nothing created, when another request holds it.
    /// </summary>
    public async Task<Created?> CreateAsync(
        Caller caller, SourceType type, string accountName, SourceChange change, string? publicKeySql, IdempotencyClaim? claim,
        CancellationToken cancellationToken, Func<DbConnection, DbTransaction, long, CancellationToken, Task>? alongside = null)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var (created, revision) = await database.WriteAsync<(Created?, Revision?)>(async (connection, transaction, ct) =>
        {
            if (claim is not null && !await claim.TakeAsync(connection, transaction, now, ct))
            {
                return WriteResult.Discarded<(Created?, Revision?)>((null, null));
            }

            var id = await SourceRows.InsertAsync(connection, transaction, caller.OrganizationId, type.Name, accountName, now, ct);
            var empty = new SourceRow(id, caller.OrganizationId, type.Name, accountName, [], new Dictionary<string, SecretEntry>(), false, 1, now, now);
            var row = Apply(type, empty, change, accountName, now);
            var created = new Created(row with { Version = 1 }, publicKeySql);

            // The row's write goes with the revision (one round trip) unless other work must follow it.
            DbCommand? write = SourceRows.Update(connection, transaction, created.Row);
            if (alongside is not null)
            {
                await write.ExecuteNonQueryAsync(ct);
                write = null;
                await alongside(connection, transaction, id, ct);
            }

            if (claim is not null)
            {
                await claim.RecordAsync(connection, transaction, created, ct);
            }

            var revision = await SourceRevisions.AppendLastAsync(
                connection, transaction, write, Revision.By(caller, id, RevisionActions.Create, now, RevisionChanges.Between(type, null, row)), ct);
            return WriteResult.Kept<(Created?, Revision?)>((created, revision));
        }, cancellationToken);
        Audit(revision);
        return created;
    }

    /// <summary>
    /// update-config: checks <paramref name="body"/> against the stored type and configuration and
    /// merges it.
    /// </summary>
    public Task<WriteOutcome> UpdateConfigAsync(Caller caller, long id, JsonObject body, string? ifMatch, CancellationToken cancellationToken) =>
        WriteHeldAsync(caller, id, ifMatch, (stored, now) =>
        {
            var (type, accountName, change, errors) = CheckUpdate(stored, body);
            if (!errors.IsEmpty)
            {
                return Edit.Answer(WriteOutcome.Invalid(errors));
            }

            // A body that names no field changes nothing: no new version, ETag or revision.
            if (change.Sent.Count == 0 && accountName is null)
            {
                return Edit.Answer(WriteOutcome.Written(stored));
            }

            var row = Apply(type, stored, change, accountName ?? stored.AccountName, now) with { Version = stored.Version + 1 };
            return Edit.Store(row, RevisionActions.Update, RevisionChanges.Between(type, stored, row));
        }, cancellationToken);

    /// <summary>PUT/PATCH on the source: only the display name changes.</summary>
    public Task<WriteOutcome> RenameAsync(Caller caller, long id, string? accountName, string? ifMatch, CancellationToken cancellationToken) =>
        WriteHeldAsync(caller, id, ifMatch, (stored, now) =>
        {
            if (accountName is null)
            {
                return Edit.Answer(WriteOutcome.Written(stored));
            }

            var row = stored with { AccountName = accountName, Version = stored.Version + 1, UpdatedAt = now };
            return Edit.Store(row, RevisionActions.Update, RevisionChanges.Between(SourceTypes.Find(stored.Type)!, stored, row));
        }, cancellationToken);

    /// <summary>
    /// A change of what a source holds outside its row (a FILE source's files): <paramref name="changes"/>
    /// says what the revision records, or null when the source cannot take the change (then it is
    /// not found); <paramref name="alongside"/> writes the rest in the transaction that holds the
    /// row, with the token it is given, not the request's: in a group commit, a cancelled statement
    /// would interrupt the transaction of every request in the batch. The source gets a new version
    /// and is not fully configured until its new holdings are ready.
    /// </summary>
    public Task<WriteOutcome> WriteAlongsideAsync(
        Caller caller, long id, Func<SourceRow, JsonObject?> changes, Func<DbConnection, DbTransaction, SourceRow, CancellationToken, Task> alongside,
        CancellationToken cancellationToken) =>
        WriteHeldAsync(caller, id, ifMatch: null, (stored, now) => changes(stored) is { } recorded
            ? Edit.Store(stored with { IsFullyConfigured = false, Version = stored.Version + 1, UpdatedAt = now }, RevisionActions.Update, recorded)
            : Edit.Answer(WriteOutcome.NotFound), cancellationToken, alongside);

    /// <summary>
    /// Records whether a source whose readiness is its own work's (<see cref="SourceType.ReadinessFromFields"/>)
    /// is ready, from <paramref name="ready"/> read in the transaction that holds the row; a change
    /// gives the source a new version (its ETag changes with <c>is_fully_configured</c>). No revision:
    /// the configuration did not change.
    /// </summary>
    public async Task SetReadinessAsync(long id, Func<DbConnection, DbTransaction, CancellationToken, Task<bool>> ready, CancellationToken cancellationToken)
    {
        await database.WriteAsync(async (connection, transaction, ct) =>
        {
            var held = await connection.Command("SELECT is_fully_configured FROM sources WHERE id = @id AND deleted_at IS NULL" + database.ForUpdate, transaction)
                .With("@id", id).ExecuteScalarAsync(ct);
            if (held is null or DBNull)
            {
                return WriteResult.Discarded<bool>(false);
            }

            var now = await ready(connection, transaction, ct);
            if (Convert.ToBoolean(held, System.Globalization.CultureInfo.InvariantCulture) != now)
            {
                await connection.Command("UPDATE sources SET is_fully_configured = @ready, version = version + 1, updated_at = @now WHERE id = @id", transaction)
                    .With("@ready", now).With("@now", time.GetUtcNow().ToUnixTimeMilliseconds()).With("@id", id).ExecuteNonQueryAsync(ct);
            }

            return WriteResult.Kept<bool>(true);
        }, cancellationToken);
    }

    public Task<WriteOutcome> DeleteAsync(Caller caller, long id, string? ifMatch, CancellationToken cancellationToken) =>
        WriteHeldAsync(caller, id, ifMatch, (stored, _) =>
            Edit.Delete(stored, RevisionChanges.OfDelete(SourceTypes.Find(stored.Type)!, stored)), cancellationToken);

    /// <summary>
    /// What update-config would store, checked and merged in memory but not written: for checks
    /// that need the network (such as verifying selected schemas), which must not hold a row lock.
    /// </summary>
    public async Task<(SourceConnection? Connection, ValidationErrors? Errors)> PreviewUpdateAsync(
        Caller caller, long id, JsonObject body, CancellationToken cancellationToken)
    {
        var stored = await sources.FindAsync(caller, id, cancellationToken);
        if (stored is null)
        {
            return (null, null);
        }

        var (type, _, change, errors) = CheckUpdate(stored, body);
        return errors.IsEmpty ? (sources.Merged(type, stored, change), null) : (null, errors);
    }

    /// <summary>
    /// The one way a stored source is changed: in a write transaction (on SQLite, a savepoint of a
    /// group commit: see <see cref="Database.WriteAsync{T}"/>), the caller's row is found and held,
    /// <c>If-Match</c> is checked against it, and <paramref name="edit"/> decides; what it stores is
    /// written with its revision in the same transaction and audited once committed.
    /// </summary>
    private async Task<WriteOutcome> WriteHeldAsync(
        Caller caller, long id, string? ifMatch, Func<SourceRow, long, Edit> edit, CancellationToken cancellationToken,
        Func<DbConnection, DbTransaction, SourceRow, CancellationToken, Task>? alongside = null)
    {
        // Tokens never reach a write route (403), and a token's caller could not see another source anyway.
        if (caller.Token?.Sees(id) == false)
        {
            return WriteOutcome.NotFound;
        }

        var (outcome, revision) = await database.WriteAsync<(WriteOutcome, Revision?)>(async (connection, transaction, ct) =>
        {
            var stored = await SourceRows.FindAsync(database, connection, caller.OrganizationId, id, transaction, ct);
            if (stored is null)
            {
                return WriteResult.Discarded<(WriteOutcome, Revision?)>((WriteOutcome.NotFound, null));
            }

            if (!EntityTags.Satisfies(ifMatch, EntityTags.For(stored)))
            {
                return WriteResult.Discarded<(WriteOutcome, Revision?)>((WriteOutcome.Stale(stored), null));
            }

            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var decided = edit(stored, now);
            if (decided.Outcome is { } answer)
            {
                return WriteResult.Discarded<(WriteOutcome, Revision?)>((answer, null));
            }

            // The row's write, its revision and (on PostgreSQL) the commit in one round trip, unless
            // other work must follow the row's write.
            DbCommand? write = decided.Deletes
                ? SourceRows.Delete(connection, transaction, caller.OrganizationId, id, now)
                : SourceRows.Update(connection, transaction, decided.Row!);
            if (alongside is not null)
            {
                await write.ExecuteNonQueryAsync(ct);
                write = null;
                await alongside(connection, transaction, decided.Row!, ct);
            }

            var revision = await SourceRevisions.AppendLastAsync(
                connection, transaction, write, Revision.By(caller, id, decided.Action!, now, decided.Changes!), ct);
            return WriteResult.Kept<(WriteOutcome, Revision?)>((WriteOutcome.Written(decided.Row!), revision));
        }, cancellationToken);
        Audit(revision);
        return outcome;
    }

    /// <summary>Audits a committed change (the write's task completes only once its commit did).</summary>
    private void Audit(Revision? committed)
    {
        if (committed is not null)
        {
            audit.Record(committed);
        }
    }

    /// <summary>What a write decided about the row it holds: an answer with nothing written, or the row to store (or delete) and its revision.</summary>
    private sealed record Edit(WriteOutcome? Outcome, SourceRow? Row, string? Action, JsonObject? Changes, bool Deletes)
    {
        public static Edit Answer(WriteOutcome outcome) => new(outcome, null, null, null, false);

        public static Edit Store(SourceRow row, string action, JsonObject changes) => new(null, row, action, changes, false);

        public static Edit Delete(SourceRow stored, JsonObject changes) => new(null, stored, RevisionActions.Delete, changes, true);
    }

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
        var view = sources.View(stored);
        // Every problem together, as on create: the type's rules run whatever the fields said.
        type.Check(change, view, errors);
        type.CheckGroups(change, view, errors);

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
            IsFullyConfigured = type.ReadinessFromFields ? type.IsFullyConfigured(merged) : stored.IsFullyConfigured,
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
