using System.Data.Common;
using System.Text.Json.Nodes;
using Caravan.Api.Data;
using Caravan.Api.Secrets;

namespace Caravan.Api.Sources;

/// <summary>A secret as stored: ciphertext under a master key version, and when it last changed.</summary>
public sealed record SecretEntry(string KeyId, string Ciphertext, long UpdatedAt)
{
    public StoredSecret ToStoredSecret() => new(KeyId, Ciphertext);
}

/// <summary>A source as stored. Internal to the feature: responses are built from it, never it.</summary>
public sealed record SourceRow(
    long Id,
    long OrganizationId,
    string Type,
    string AccountName,
    JsonObject Settings,
    IReadOnlyDictionary<string, SecretEntry> Secrets,
    bool IsFullyConfigured,
    long Version,
    long CreatedAt,
    long UpdatedAt)
{
    public ConnectionResponse ToResponse() =>
        new(Id, AccountName, Type, DbCommandExtensions.ToTime(CreatedAt), IsFullyConfigured);
}

/// <summary>The SQL of the sources table, shared by both providers.</summary>
internal static class SourceRows
{
    private const string Columns =
        "id, organization_id, type, account_name, settings, secrets, is_fully_configured, version, created_at, updated_at";

    public static async Task<SourceRow?> FindAsync(
        Database database, DbConnection connection, long organizationId, long id, DbTransaction? transaction, CancellationToken cancellationToken)
    {
        var sql = $"SELECT {Columns} FROM sources WHERE id = @id AND organization_id = @org AND deleted_at IS NULL"
            + (transaction is null ? string.Empty : database.ForUpdate);
        await using var reader = await connection.Command(sql, transaction)
            .With("@id", id).With("@org", organizationId).ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    /// <summary>The Connection object and its ETag, read without touching settings or secrets (the hot GET).</summary>
    public static async Task<(ConnectionResponse Connection, string ETag)?> FindSummaryAsync(
        DbConnection connection, long organizationId, long id, CancellationToken cancellationToken)
    {
        await using var reader = await connection.Command("""
            SELECT id, account_name, type, created_at, is_fully_configured, version FROM sources
            WHERE id = @id AND organization_id = @org AND deleted_at IS NULL
            """).With("@id", id).With("@org", organizationId).ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        var found = new ConnectionResponse(
            reader.GetInt64(0), reader.GetString(1), reader.GetString(2), DbCommandExtensions.ToTime(reader.GetInt64(3)), reader.GetBoolean(4));
        return (found, EntityTags.For(found.Id, reader.GetInt64(5)));
    }

    public static async Task<long> CountAsync(DbConnection connection, long organizationId, CancellationToken cancellationToken)
    {
        var count = await connection.Command("SELECT COUNT(*) FROM sources WHERE organization_id = @org AND deleted_at IS NULL")
            .With("@org", organizationId).ExecuteScalarAsync(cancellationToken);
        return Convert.ToInt64(count, System.Globalization.CultureInfo.InvariantCulture);
    }

    public static async Task<List<ConnectionResponse>> PageAsync(
        DbConnection connection, long organizationId, long offset, int limit, CancellationToken cancellationToken)
    {
        await using var reader = await connection.Command("""
            SELECT id, account_name, type, created_at, is_fully_configured FROM sources
            WHERE organization_id = @org AND deleted_at IS NULL
            ORDER BY id LIMIT @limit OFFSET @offset
            """).With("@org", organizationId).With("@limit", limit).With("@offset", offset).ExecuteReaderAsync(cancellationToken);
        var results = new List<ConnectionResponse>(Math.Min(limit, 1000));
        while (await reader.ReadAsync(cancellationToken))
        {
            results.Add(new ConnectionResponse(
                reader.GetInt64(0), reader.GetString(1), reader.GetString(2),
                DbCommandExtensions.ToTime(reader.GetInt64(3)), reader.GetBoolean(4)));
        }

        return results;
    }

    /// <summary>Inserts an empty row to obtain the id that every secret of the source is bound to.</summary>
    public static async Task<long> InsertAsync(
        DbConnection connection, DbTransaction transaction, long organizationId, string type, string accountName, long now, CancellationToken cancellationToken)
    {
        var id = await connection.Command("""
            INSERT INTO sources (organization_id, type, account_name, settings, secrets, is_fully_configured, version, created_at, updated_at)
            VALUES (@org, @type, @name, '{}', '{}', @configured, 1, @now, @now)
            RETURNING id
            """, transaction)
            .With("@org", organizationId).With("@type", type).With("@name", accountName)
            .With("@configured", false).With("@now", now).ExecuteScalarAsync(cancellationToken);
        return Convert.ToInt64(id, System.Globalization.CultureInfo.InvariantCulture);
    }

    public static Task<int> UpdateAsync(DbConnection connection, DbTransaction transaction, SourceRow row, CancellationToken cancellationToken) =>
        connection.Command("""
            UPDATE sources SET account_name = @name, settings = @settings, secrets = @secrets,
                is_fully_configured = @configured, version = @version, updated_at = @now
            WHERE id = @id AND deleted_at IS NULL
            """, transaction)
            .With("@name", row.AccountName).With("@settings", row.Settings.ToJsonString())
            .With("@secrets", WriteSecrets(row.Secrets)).With("@configured", row.IsFullyConfigured)
            .With("@version", row.Version).With("@now", row.UpdatedAt).With("@id", row.Id)
            .ExecuteNonQueryAsync(cancellationToken);

    /// <summary>Soft delete: the row stays for history, its secrets are overwritten at once.</summary>
    public static Task<int> DeleteAsync(
        DbConnection connection, DbTransaction transaction, long organizationId, long id, long now, CancellationToken cancellationToken) =>
        connection.Command("""
            UPDATE sources SET deleted_at = @now, updated_at = @now, secrets = '{}', version = version + 1
            WHERE id = @id AND organization_id = @org AND deleted_at IS NULL
            """, transaction).With("@now", now).With("@id", id).With("@org", organizationId).ExecuteNonQueryAsync(cancellationToken);

    private static SourceRow Read(DbDataReader reader) => new(
        reader.GetInt64(0),
        reader.GetInt64(1),
        reader.GetString(2),
        reader.GetString(3),
        JsonNode.Parse(reader.GetString(4))!.AsObject(),
        ReadSecrets(reader.GetString(5)),
        reader.GetBoolean(6),
        reader.GetInt64(7),
        reader.GetInt64(8),
        reader.GetInt64(9));

    private static Dictionary<string, SecretEntry> ReadSecrets(string json)
    {
        var secrets = new Dictionary<string, SecretEntry>(StringComparer.Ordinal);
        foreach (var (field, value) in JsonNode.Parse(json)!.AsObject())
        {
            secrets[field] = new SecretEntry(value!["k"]!.GetValue<string>(), value["c"]!.GetValue<string>(), value["t"]!.GetValue<long>());
        }

        return secrets;
    }

    private static string WriteSecrets(IReadOnlyDictionary<string, SecretEntry> secrets)
    {
        var json = new JsonObject();
        foreach (var (field, entry) in secrets.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            json[field] = new JsonObject { ["k"] = entry.KeyId, ["c"] = entry.Ciphertext, ["t"] = entry.UpdatedAt };
        }

        return json.ToJsonString();
    }
}
