using System.Data.Common;
using System.Text.Json.Nodes;
using Caravan.Api.Auth;
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

/// <summary>
/// A source as stored with its settings and secrets still as the stored JSON text: what a query
/// needs, and cheap to compare with what an earlier query prepared from it.
/// </summary>
public sealed record StoredSource(long Id, long OrganizationId, string Type, bool IsFullyConfigured, long Version, string Settings, string Secrets);

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

    /// <summary>Whether the organization has this live source.</summary>
    public static async Task<bool> ExistsAsync(DbConnection connection, long organizationId, long id, CancellationToken cancellationToken)
    {
        var found = await connection.Command("SELECT 1 FROM sources WHERE id = @id AND organization_id = @org AND deleted_at IS NULL")
            .With("@id", id).With("@org", organizationId).ExecuteScalarAsync(cancellationToken);
        return found is not null;
    }

    /// <summary>
    /// The caller of an active key, and the Connection object of its organization's source with its
    /// ETag, in one query (the hot GET: no settings or secrets are read). No caller: the key is
    /// unknown or revoked; a caller without a source: not found.
    /// </summary>
    public static async Task<(Caller? Caller, (ConnectionResponse Connection, string ETag)? Source)> FindSummaryForKeyAsync(
        ReadLease lease, PresentedKey presented, long id, CancellationToken cancellationToken)
    {
        var sql = presented.Token is null ? SummaryForKeySql : SummaryForMintingKeySql;
        var (caller, found, summary) = await FindWithKeyAsync(lease, sql, presented, id, ReadSummary, cancellationToken);
        return (caller, found ? summary : null);
    }

    /// <summary>The source columns of a summary, read by <see cref="ReadSummary"/>; <c>s</c> is the sources table.</summary>
    public const string SummaryColumns = "s.id, s.account_name, s.type, s.created_at, s.is_fully_configured, s.version";

    public static (ConnectionResponse Connection, string ETag) ReadSummary(DbDataReader reader, int first)
    {
        var connection = new ConnectionResponse(
            reader.GetInt64(first), reader.GetString(first + 1), reader.GetString(first + 2),
            DbCommandExtensions.ToTime(reader.GetInt64(first + 3)), reader.GetBoolean(first + 4));
        return (connection, EntityTags.For(connection.Id, reader.GetInt64(first + 5)));
    }

    /// <summary>The columns of a <see cref="StoredSource"/>, read by <see cref="ReadStored"/>; <c>s</c> is the sources table.</summary>
    public const string StoredColumns = "s.id, s.organization_id, s.type, s.is_fully_configured, s.version, s.settings, s.secrets";

    public static StoredSource ReadStored(DbDataReader reader, int first) => new(
        reader.GetInt64(first), reader.GetInt64(first + 1), reader.GetString(first + 2), reader.GetBoolean(first + 3),
        reader.GetInt64(first + 4), reader.GetString(first + 5), reader.GetString(first + 6));

    /// <summary>The organization's live source, its configuration as stored text; null when there is none.</summary>
    public static async Task<StoredSource?> FindStoredAsync(DbConnection connection, long organizationId, long id, CancellationToken cancellationToken)
    {
        await using var reader = await connection.Command(
            $"SELECT {StoredColumns} FROM sources s WHERE s.id = @id AND s.organization_id = @org AND s.deleted_at IS NULL")
            .With("@id", id).With("@org", organizationId).ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadStored(reader, 0) : null;
    }

    /// <summary>
    /// The caller of an active key and its organization's source as stored, in one query (the query
    /// route: one round trip to the store before the database is reached). No caller: the key is
    /// unknown or revoked; a caller without a source: not found.
    /// </summary>
    public static async Task<(Caller? Caller, StoredSource? Source)> FindStoredForKeyAsync(
        ReadLease lease, PresentedKey presented, long id, CancellationToken cancellationToken)
    {
        var sql = presented.Token is null ? StoredForKeySql : StoredForMintingKeySql;
        var (caller, found, source) = await FindWithKeyAsync(lease, sql, presented, id, ReadStored, cancellationToken);
        return (caller, found ? source : null);
    }

    private static readonly string SummaryForKeySql = KeyAndSourceSql(SummaryColumns, byMintingKey: false);

    private static readonly string StoredForKeySql = KeyAndSourceSql(StoredColumns, byMintingKey: false);

    private static readonly string SummaryForMintingKeySql = KeyAndSourceSql(SummaryColumns, byMintingKey: true);

    private static readonly string StoredForMintingKeySql = KeyAndSourceSql(StoredColumns, byMintingKey: true);

    /// <summary>
    /// The tenancy rule of every key-and-source read: the key <c>k</c> with its organization
    /// <c>o</c>, and that organization's live source <c>s</c> with the id <paramref name="id"/>
    /// (none when it is missing, deleted or another organization's). The key itself is matched by
    /// the caller: <c>k.key_hash = … AND k.revoked_at IS NULL</c> (<see cref="PresentedKey.Condition"/>).
    /// </summary>
    public static string KeysOrganizationAndSource(string id) => $"""
        api_keys k JOIN organizations o ON o.id = k.organization_id
        LEFT JOIN sources s ON s.id = {id} AND s.organization_id = k.organization_id AND s.deleted_at IS NULL
        """;

    /// <summary>The caller's columns, then <paramref name="sourceColumns"/> (null when the organization has no such live source).</summary>
    private static string KeyAndSourceSql(string sourceColumns, bool byMintingKey) => $"""
        SELECT {ApiKeys.CallerColumns}, {sourceColumns}
        FROM {KeysOrganizationAndSource("@id")}
        WHERE {PresentedKey.Condition(byMintingKey, "@key")} AND k.revoked_at IS NULL
        """;

    private static async Task<(Caller? Caller, bool Found, T? Source)> FindWithKeyAsync<T>(
        ReadLease lease, string sql, PresentedKey presented, long id, Func<DbDataReader, int, T> read, CancellationToken cancellationToken)
    {
        await using var reader = await lease.Command(sql).With("@key", presented.Key).With("@id", id).ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken) || presented.ReadCaller(reader, first: 0) is not { } caller)
        {
            return (null, false, default);
        }

        return await reader.IsDBNullAsync(ApiKeys.CallerColumnCount, cancellationToken)
            ? (caller, false, default)
            : (caller, true, read(reader, ApiKeys.CallerColumnCount));
    }

    /// <summary>
    /// The organization's live-source count and where its <paramref name="offset"/>-th live source (by
    /// id) is, from the per-range counts of migration 0002: page 1 needs only their sum; a later page
    /// walks the ranges (one row per 1,024 ids) to the one holding the offset, so the page query
    /// skips at most one range's rows instead of every earlier row, and nothing counts the sources
    /// one by one. (Tried: the same walk as one SQL statement with a window function; on
    /// PostgreSQL it was slower than reading the ranges here.)
    /// </summary>
    public static async Task<ListSeek> SeekAsync(ReadLease lease, long organizationId, long offset, CancellationToken cancellationToken)
    {
        if (offset == 0)
        {
            // Page 1 starts at the organization's first id: the index finds it, only the count is needed.
            var total = await lease.Command("SELECT CAST(COALESCE(SUM(live), 0) AS BIGINT) FROM source_buckets WHERE organization_id = @org")
                .With("@org", organizationId).ExecuteScalarAsync(cancellationToken);
            return new ListSeek(Convert.ToInt64(total, System.Globalization.CultureInfo.InvariantCulture), 0, 0);
        }

        await using var reader = await lease.Command(
            "SELECT bucket, live FROM source_buckets WHERE organization_id = @org AND live > 0 ORDER BY bucket")
            .With("@org", organizationId).ExecuteReaderAsync(cancellationToken);
        long count = 0, fromId = long.MaxValue, skip = 0;
        while (await reader.ReadAsync(cancellationToken))
        {
            var (bucket, live) = (reader.GetInt64(0), reader.GetInt64(1));
            if (fromId == long.MaxValue && count + live > offset)
            {
                (fromId, skip) = (bucket * ListSeek.RangeSize, offset - count);
            }

            count += live;
        }

        return new ListSeek(count, fromId, skip);
    }

    /// <summary>The page at <paramref name="seek"/>: the live sources from its range's first id, skipping the ones before the offset.</summary>
    public static async Task<List<ConnectionResponse>> PageAsync(
        ReadLease lease, long organizationId, ListSeek seek, int limit, CancellationToken cancellationToken)
    {
        await using var reader = await lease.Command("""
            SELECT id, account_name, type, created_at, is_fully_configured FROM sources
            WHERE organization_id = @org AND deleted_at IS NULL AND id >= @from
            ORDER BY id LIMIT @limit OFFSET @skip
            """).With("@org", organizationId).With("@from", seek.FromId).With("@limit", limit).With("@skip", seek.Skip)
            .ExecuteReaderAsync(cancellationToken);
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
        Update(connection, transaction, row).ExecuteNonQueryAsync(cancellationToken);

    /// <summary>The row's write, not run yet: a write sends it with its revision (<see cref="Revisions.SourceRevisions.AppendLastAsync"/>).</summary>
    public static DbCommand Update(DbConnection connection, DbTransaction transaction, SourceRow row) =>
        connection.Command("""
            UPDATE sources SET account_name = @name, settings = @settings, secrets = @secrets,
                is_fully_configured = @configured, version = @version, updated_at = @now
            WHERE id = @id AND deleted_at IS NULL
            """, transaction)
            .With("@name", row.AccountName).With("@settings", row.Settings.ToJsonString())
            .With("@secrets", WriteSecrets(row.Secrets)).With("@configured", row.IsFullyConfigured)
            .With("@version", row.Version).With("@now", row.UpdatedAt).With("@id", row.Id);

    /// <summary>Soft delete, not run yet: the row stays for history, its secrets are overwritten at once.</summary>
    public static DbCommand Delete(DbConnection connection, DbTransaction transaction, long organizationId, long id, long now) =>
        connection.Command("""
            UPDATE sources SET deleted_at = @now, updated_at = @now, secrets = '{}', version = version + 1
            WHERE id = @id AND organization_id = @org AND deleted_at IS NULL
            """, transaction).With("@now", now).With("@id", id).With("@org", organizationId);

    private static SourceRow Read(DbDataReader reader, int first = 0) => new(
        reader.GetInt64(first),
        reader.GetInt64(first + 1),
        reader.GetString(first + 2),
        reader.GetString(first + 3),
        JsonNode.Parse(reader.GetString(first + 4))!.AsObject(),
        ReadSecrets(reader.GetString(first + 5)),
        reader.GetBoolean(first + 6),
        reader.GetInt64(first + 7),
        reader.GetInt64(first + 8),
        reader.GetInt64(first + 9));

    public static Dictionary<string, SecretEntry> ReadSecrets(string json)
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

/// <summary>
/// An organization's live-source count, and where a page starts: the first id of the range of
/// <see cref="RangeSize"/> ids holding it, and how many of that range's live sources come before it.
/// </summary>
public sealed record ListSeek(long Count, long FromId, long Skip)
{
    /// <summary>The width of a range; migration 0002's triggers divide ids by the same number.</summary>
    public const long RangeSize = 1024;
}
