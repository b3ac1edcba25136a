using System.Data.Common;
using System.Security.Cryptography;
using Caravan.Api.Data;

namespace Caravan.Api.Secrets;

/// <summary>
/// Keys the server holds for itself, kept in the store (<c>server_keys</c>) encrypted under the
/// master key ring like any secret. Today there is one: the fingerprint key, the HMAC key of
/// secret fingerprints. It is random and independent of the master key versions, so fingerprints
/// survive <c>secrets rotate</c>; it lives in the store, so every replica uses the same one.
/// </summary>
public sealed class ServerKeys(Database database, SecretProtector protector) : IDisposable
{
    public const string FingerprintKeyName = "fingerprint";

    /// <summary>
    /// A table of keys the server holds for itself: its name, the column that identifies a key, and
    /// the name each key is encrypted under (<see cref="SecretProtector.ProtectServerKey"/>). Its
    /// rows have <c>key_id</c> and <c>ciphertext</c> columns.
    /// </summary>
    public sealed record KeyTable(string Name, string IdColumn, Func<string, string> SecretName);

    private static readonly KeyTable Table = new("server_keys", "name", name => name);

    private const int KeySize = 32;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private byte[]? _fingerprintKey;

    /// <summary>
    /// The fingerprint key: created the first time any replica needs it, read from the store once
    /// per process, then kept in memory (it never changes; a rotation only re-encrypts it).
    /// </summary>
    public async Task<ReadOnlyMemory<byte>> FingerprintKeyAsync(CancellationToken cancellationToken)
    {
        if (_fingerprintKey is { } cached)
        {
            return cached;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            return _fingerprintKey ??= await LoadOrCreateAsync(FingerprintKeyName, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();

    /// <summary>Re-encrypts every server key that is not under the newest master key; returns how many were.</summary>
    internal static Task<int> ReencryptAsync(Database database, SecretProtector protector, CancellationToken cancellationToken) =>
        ReencryptAsync(database, protector, Table, cancellationToken);

    /// <summary>
    /// The same for a table of server keys of its own (such as the token signing keys): every row
    /// not under the newest master key, in one transaction, rows locked.
    /// </summary>
    internal static async Task<int> ReencryptAsync(Database database, SecretProtector protector, KeyTable table, CancellationToken cancellationToken)
    {
        var current = protector.CurrentKeyId;
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        var count = 0;
        foreach (var (id, secret) in await ReadAllAsync(connection, transaction, database.ForUpdate, table, cancellationToken))
        {
            if (secret.KeyId == current)
            {
                continue;
            }

            var name = table.SecretName(id);
            var rewritten = protector.ProtectServerKey(name, protector.UnprotectServerKey(name, secret));
            await connection.Command($"UPDATE {table.Name} SET key_id = @key, ciphertext = @ciphertext WHERE {table.IdColumn} = @id", transaction)
                .With("@key", rewritten.KeyId).With("@ciphertext", rewritten.Ciphertext).With("@id", id)
                .ExecuteNonQueryAsync(cancellationToken);
            count++;
        }

        await transaction.CommitAsync(cancellationToken);
        return count;
    }

    /// <summary>Every server key as stored, by name.</summary>
    internal static Task<List<(string Name, StoredSecret Secret)>> ReadAllAsync(
        DbConnection connection, DbTransaction? transaction, string forUpdate, CancellationToken cancellationToken) =>
        ReadAllAsync(connection, transaction, forUpdate, Table, cancellationToken);

    /// <summary>Every key of <paramref name="table"/> as stored, by its id there.</summary>
    internal static async Task<List<(string Name, StoredSecret Secret)>> ReadAllAsync(
        DbConnection connection, DbTransaction? transaction, string forUpdate, KeyTable table, CancellationToken cancellationToken)
    {
        var keys = new List<(string, StoredSecret)>();
        await using var reader = await connection.Command(
            $"SELECT {table.IdColumn}, key_id, ciphertext FROM {table.Name} ORDER BY {table.IdColumn}" + forUpdate, transaction)
            .ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            keys.Add((reader.GetString(0), new StoredSecret(reader.GetString(1), reader.GetString(2))));
        }

        return keys;
    }

    private async Task<byte[]> LoadOrCreateAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var stored = await ReadAsync(connection, name, cancellationToken);
        if (stored is null)
        {
            // Replicas may race to create it: the first insert wins and every one reads the winner's key.
            var fresh = RandomNumberGenerator.GetBytes(KeySize);
            var encrypted = protector.ProtectServerKey(name, Convert.ToBase64String(fresh));
            CryptographicOperations.ZeroMemory(fresh);
            await using (var transaction = await database.BeginWriteAsync(connection, cancellationToken))
            {
                await connection.Command("""
                    INSERT INTO server_keys (name, key_id, ciphertext, created_at) VALUES (@name, @key, @ciphertext, @now)
                    ON CONFLICT (name) DO NOTHING
                    """, transaction)
                    .With("@name", name).With("@key", encrypted.KeyId).With("@ciphertext", encrypted.Ciphertext)
                    .With("@now", DbCommandExtensions.Now()).ExecuteNonQueryAsync(cancellationToken);
                await transaction.CommitAsync(cancellationToken);
            }

            stored = await ReadAsync(connection, name, cancellationToken)
                ?? throw new InvalidOperationException($"The server's {name} key could not be stored.");
        }

        var key = Convert.FromBase64String(protector.UnprotectServerKey(name, stored));
        return key.Length == KeySize
            ? key
            : throw new InvalidOperationException($"The server's {name} key in the store is not {KeySize} bytes long.");
    }

    private static async Task<StoredSecret?> ReadAsync(DbConnection connection, string name, CancellationToken cancellationToken)
    {
        await using var reader = await connection.Command("SELECT key_id, ciphertext FROM server_keys WHERE name = @name")
            .With("@name", name).ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? new StoredSecret(reader.GetString(0), reader.GetString(1)) : null;
    }
}
