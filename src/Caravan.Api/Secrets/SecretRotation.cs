using System.Data.Common;
using System.Text.Json.Nodes;
using Caravan.Api.Data;
using Caravan.Api.Revisions;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Secrets;

/// <summary>
/// <c>secrets rotate</c>: re-encrypts every stored secret under the newest master key, a batch of
/// sources per transaction, while servers keep serving. Each row is locked, re-read and rewritten
/// in its transaction, so a concurrent update-config is never lost, and only entries under an
/// older key are touched, so an interrupted rotation is finished by running it again. Each source
/// re-encrypted gets a <c>rotate</c> revision in the same transaction, with no API key as actor.
/// </summary>
public sealed class SecretRotation(
    Database database, SecretProtector protector, IOptions<SecretsOptions> options, ILogger<SecretRotation> logger, AuditLog audit,
    IEnumerable<ServerKeys.KeyTable> keyTables)
{
    /// <summary>The tables of keys the server holds for itself besides <c>server_keys</c>: the token signing keys and what features register (FILE sources' data keys).</summary>
    private IEnumerable<ServerKeys.KeyTable> KeyTables => keyTables.Prepend(Tokens.TokenSigningKeys.Table);

    public const int BatchSize = 100;

    /// <summary>What a rotation did; <paramref name="ServerKeys"/> counts the server's own keys it re-encrypted (token signing keys included).</summary>
    public sealed record Report(string? AddedKeyId, string CurrentKeyId, int Sources, int Secrets, int ServerKeys = 0);

    /// <summary>
    /// With a key file, first adds a new key version — unless secrets under older keys remain, which
    /// means an earlier rotation did not finish: then it finishes that one. With keys from
    /// configuration, the operator has already made the new key current.
    /// </summary>
    public async Task<Report> RotateAsync(CancellationToken cancellationToken = default)
    {
        string? added = null;
        if (string.IsNullOrWhiteSpace(options.Value.MasterKey))
        {
            if ((await CountByKeyAsync(cancellationToken)).Keys.All(k => k == protector.CurrentKeyId))
            {
                added = MasterKeyFile.AddNewKey(options.Value.MasterKeyFile);
                protector.Reload(force: true);
                logger.LogInformation("Added master key {KeyId} to the key file", added);
            }
        }

        var (sources, secrets) = await ReencryptAsync(cancellationToken);

        // The fingerprint key and the token signing keys too, so the old master key can be retired;
        // their values stay, and so do fingerprints and tokens.
        var serverKeys = await ServerKeys.ReencryptAsync(database, protector, cancellationToken);
        foreach (var table in KeyTables)
        {
            serverKeys += await ServerKeys.ReencryptAsync(database, protector, table, cancellationToken);
        }

        return new Report(added, protector.CurrentKeyId, sources, secrets, serverKeys);
    }

    /// <summary>How many stored secrets each master key protects, the server's own keys included.</summary>
    public async Task<IReadOnlyDictionary<string, int>> CountByKeyAsync(CancellationToken cancellationToken = default)
    {
        var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        await using var connection = await database.OpenAsync(cancellationToken);
        var serverKeys = await ServerKeys.ReadAllAsync(connection, null, string.Empty, cancellationToken);
        foreach (var table in KeyTables)
        {
            serverKeys.AddRange(await ServerKeys.ReadAllAsync(connection, null, string.Empty, table, cancellationToken));
        }

        foreach (var (_, secret) in serverKeys)
        {
            counts[secret.KeyId] = counts.GetValueOrDefault(secret.KeyId) + 1;
        }

        long after = 0;
        while (true)
        {
            var batch = await ReadBatchAsync(connection, null, after, cancellationToken);
            if (batch.Count == 0)
            {
                return counts;
            }

            foreach (var (_, _, secrets) in batch)
            {
                foreach (var (_, entry) in secrets)
                {
                    var keyId = entry!["k"]!.GetValue<string>();
                    counts[keyId] = counts.GetValueOrDefault(keyId) + 1;
                }
            }

            after = batch[^1].Id;
        }
    }

    private async Task<(int Sources, int Secrets)> ReencryptAsync(CancellationToken cancellationToken)
    {
        var current = protector.CurrentKeyId;
        int sources = 0, secrets = 0;
        long after = 0;
        var organizations = new Dictionary<long, string>();
        await using var connection = await database.OpenAsync(cancellationToken);
        while (true)
        {
            await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
            var batch = await ReadBatchAsync(connection, transaction, after, cancellationToken);
            if (batch.Count == 0)
            {
                break;
            }

            var revisions = new List<Revision>();
            foreach (var (id, organizationId, stored) in batch)
            {
                var changed = 0;
                foreach (var (field, entry) in stored.ToList())
                {
                    var secret = new StoredSecret(entry!["k"]!.GetValue<string>(), entry["c"]!.GetValue<string>());
                    if (secret.KeyId == current)
                    {
                        continue;
                    }

                    var rewritten = protector.Protect(id, field, protector.Unprotect(id, field, secret));
                    stored[field] = new JsonObject { ["k"] = rewritten.KeyId, ["c"] = rewritten.Ciphertext, ["t"] = entry["t"]!.GetValue<long>() };
                    changed++;
                }

                if (changed > 0)
                {
                    // The version (and so the ETag) stays: the configuration itself did not change.
                    await connection.Command("UPDATE sources SET secrets = @secrets WHERE id = @id", transaction)
                        .With("@secrets", stored.ToJsonString()).With("@id", id).ExecuteNonQueryAsync(cancellationToken);
                    var organization = await OrganizationNameAsync(connection, transaction, organizations, organizationId, cancellationToken);
                    revisions.Add(await SourceRevisions.AppendAsync(
                        connection, transaction, new Revision(id, organizationId, organization, null, RevisionActions.Rotate, DbCommandExtensions.Now(), []), cancellationToken));
                    sources++;
                    secrets += changed;
                }
            }

            await transaction.CommitAsync(cancellationToken);
            foreach (var revision in revisions)
            {
                audit.Record(revision);
            }

            after = batch[^1].Id;
            logger.LogInformation("Rotation reached source {SourceId}: {Secrets} secrets in {Sources} sources re-encrypted so far", after, secrets, sources);
        }

        return (sources, secrets);
    }

    private static async Task<string> OrganizationNameAsync(
        DbConnection connection, DbTransaction transaction, Dictionary<long, string> names, long organizationId, CancellationToken cancellationToken)
    {
        if (!names.TryGetValue(organizationId, out var name))
        {
            name = (string)(await connection.Command("SELECT name FROM organizations WHERE id = @id", transaction)
                .With("@id", organizationId).ExecuteScalarAsync(cancellationToken))!;
            names[organizationId] = name;
        }

        return name;
    }

    private async Task<List<(long Id, long OrganizationId, JsonObject Secrets)>> ReadBatchAsync(
        DbConnection connection, DbTransaction? transaction, long after, CancellationToken cancellationToken)
    {
        var sql = "SELECT id, organization_id, secrets FROM sources WHERE id > @after AND secrets <> '{}' ORDER BY id LIMIT @limit"
            + (transaction is null ? string.Empty : database.ForUpdate);
        await using var reader = await connection.Command(sql, transaction)
            .With("@after", after).With("@limit", BatchSize).ExecuteReaderAsync(cancellationToken);
        var batch = new List<(long, long, JsonObject)>();
        while (await reader.ReadAsync(cancellationToken))
        {
            batch.Add((reader.GetInt64(0), reader.GetInt64(1), JsonNode.Parse(reader.GetString(2))!.AsObject()));
        }

        return batch;
    }
}
