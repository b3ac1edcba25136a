using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Caravan.Api.Data;

namespace Caravan.Api.Auth;

/// <summary>
/// An authenticated caller: the organization it acts for and the key it used; for a token, the key
/// that minted it and what the token grants (<see cref="Token"/>), which narrows what the key may do.
/// </summary>
public sealed record Caller(long OrganizationId, string OrganizationName, string KeyId, Tokens.TokenGrant? Token = null);

public sealed record ApiKeyInfo(string Id, string Organization, string Prefix, DateTimeOffset CreatedAt, bool Revoked);

/// <summary>
/// API keys: 256 random bits behind a <c>cvn_</c> prefix, shown once and stored only as a
/// SHA-256 hash. A fast hash is right here (unlike for passwords): the input has full entropy, so
/// there is nothing to guess offline.
/// </summary>
public sealed class ApiKeys(Database database)
{
    public const string Prefix = "cvn_";
    private const string Base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public static string NewKey()
    {
        // 43 base62 characters carry 256 bits.
        var builder = new StringBuilder(Prefix, Prefix.Length + 43);
        for (var i = 0; i < 43; i++)
        {
            builder.Append(Base62[RandomNumberGenerator.GetInt32(Base62.Length)]);
        }

        return builder.ToString();
    }

    public static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    public async Task<Caller?> AuthenticateAsync(string key, CancellationToken cancellationToken = default)
    {
        var hash = Hash(key);
        await using var lease = await database.LeaseReadAsync(cancellationToken);
        var command = lease.Command($"""
            SELECT {CallerColumns}
            FROM api_keys k JOIN organizations o ON o.id = k.organization_id
            WHERE k.key_hash = @hash AND k.revoked_at IS NULL
            """).With("@hash", hash);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadCaller(reader, hash) : null;
    }

    /// <summary>The columns <see cref="ReadCaller"/> reads first, for queries that join <c>api_keys k</c> and <c>organizations o</c>.</summary>
    public const string CallerColumns = "k.id, k.organization_id, o.name, k.key_hash";

    public const int CallerColumnCount = 4;

    /// <summary>
    /// The caller of a row found by its key hash. The index lookup found the row; the comparison
    /// that decides is constant-time.
    /// </summary>
    public static Caller? ReadCaller(DbDataReader reader, byte[] hash, int first = 0)
    {
        var stored = (byte[])reader.GetValue(first + 3);
        return CryptographicOperations.FixedTimeEquals(stored, hash)
            ? new Caller(reader.GetInt64(first + 1), reader.GetString(first + 2), reader.GetString(first))
            : null;
    }

    /// <summary>Creates the organization if needed and a key for it; returns the key id and the key.</summary>
    public async Task<(string Id, string Key)> CreateAsync(string organization, CancellationToken cancellationToken = default)
    {
        var key = NewKey();
        var id = await StoreAsync(organization, key, cancellationToken);
        return (id, key);
    }

    /// <summary>Makes sure <paramref name="key"/> is an active key of <paramref name="organization"/> (idempotent).</summary>
    public async Task EnsureAsync(string organization, string key, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var exists = await connection.Command("SELECT COUNT(*) FROM api_keys WHERE key_hash = @hash")
            .With("@hash", Hash(key)).ExecuteScalarAsync(cancellationToken);
        if (Convert.ToInt64(exists, CultureInfo.InvariantCulture) == 0)
        {
            await StoreAsync(organization, key, cancellationToken);
        }
    }

    public async Task<IReadOnlyList<ApiKeyInfo>> ListAsync(string? organization, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var command = connection.Command($"""
            SELECT k.id, o.name, k.prefix, k.created_at, k.revoked_at
            FROM api_keys k JOIN organizations o ON o.id = k.organization_id
            {(organization is null ? string.Empty : "WHERE o.name = @org")}
            ORDER BY k.created_at, k.id
            """);
        if (organization is not null)
        {
            command.With("@org", organization);
        }

        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var keys = new List<ApiKeyInfo>();
        while (await reader.ReadAsync(cancellationToken))
        {
            keys.Add(new ApiKeyInfo(reader.GetString(0), reader.GetString(1), reader.GetString(2),
                DbCommandExtensions.ToTime(reader.GetInt64(3)), !reader.IsDBNull(4)));
        }

        return keys;
    }

    /// <summary>Revokes a key; false when no such key exists. Takes effect on the next request, everywhere.</summary>
    public async Task<bool> RevokeAsync(string keyId, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var found = await connection.Command("SELECT COUNT(*) FROM api_keys WHERE id = @id").With("@id", keyId).ExecuteScalarAsync(cancellationToken);
        if (Convert.ToInt64(found, CultureInfo.InvariantCulture) == 0)
        {
            return false;
        }

        await connection.Command("UPDATE api_keys SET revoked_at = @now WHERE id = @id AND revoked_at IS NULL")
            .With("@now", DbCommandExtensions.Now()).With("@id", keyId).ExecuteNonQueryAsync(cancellationToken);
        return true;
    }

    private async Task<string> StoreAsync(string organization, string key, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        var now = DbCommandExtensions.Now();
        // Another process may create the same organization at the same moment; both end up with one.
        await connection.Command("INSERT INTO organizations (name, created_at) VALUES (@name, @now) ON CONFLICT (name) DO NOTHING", transaction)
            .With("@name", organization).With("@now", now).ExecuteNonQueryAsync(cancellationToken);
        var organizationId = await OrganizationIdAsync(connection, transaction, organization, cancellationToken);

        var id = "key_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        await connection.Command("""
            INSERT INTO api_keys (id, organization_id, key_hash, prefix, created_at)
            VALUES (@id, @org, @hash, @prefix, @now)
            """, transaction)
            .With("@id", id).With("@org", organizationId).With("@hash", Hash(key))
            .With("@prefix", key[..Math.Min(8, key.Length)]).With("@now", now)
            .ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return id;
    }

    private static async Task<long?> OrganizationIdAsync(DbConnection connection, DbTransaction transaction, string name, CancellationToken cancellationToken)
    {
        var value = await connection.Command("SELECT id FROM organizations WHERE name = @name", transaction)
            .With("@name", name).ExecuteScalarAsync(cancellationToken);
        return value is null or DBNull ? null : Convert.ToInt64(value, CultureInfo.InvariantCulture);
    }
}
