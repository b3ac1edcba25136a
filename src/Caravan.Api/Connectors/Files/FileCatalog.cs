using System.Collections.Concurrent;
using System.Data.Common;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Caravan.Api.Data;
using Caravan.Api.Secrets;

namespace Caravan.Api.Connectors.Files;

/// <summary>Where a file stands (<c>source_files.status</c>).</summary>
public static class FileStatus
{
    /// <summary>Its bytes are arriving: it is no part of a source until its request commits (a new source does not exist yet).</summary>
    public const string Uploading = "uploading";

    public const string Pending = "pending";
    public const string Ready = "ready";
    public const string Failed = "failed";
}

/// <summary>One stored file of a FILE source (a row of <c>source_files</c>).</summary>
public sealed record StoredFile(
    string Id, long? SourceId, long OrganizationId, string FileName, string Stem, string Format, long Bytes, string Status,
    string? Error, IReadOnlyList<FileTable> Tables, long CreatedAt)
{
    /// <summary>The encrypted upload.</summary>
    public string RawKey => RawObject(Id);

    /// <summary>The DuckDB database it was converted to.</summary>
    public string DatabaseKey => DatabaseObject(Id);

    /// <summary>The name DuckDB attaches its database under: unique, and nothing a user chose.</summary>
    public string Catalog => "f_" + Id;

    /// <summary>The folder of every file's objects, each file's under its id.</summary>
    public const string Folder = "files/";

    public static string RawObject(string id) => $"{Prefix(id)}raw.bin";

    public static string DatabaseObject(string id) => $"{Prefix(id)}data.duckdb";

    public static string Prefix(string id) => $"{Folder}{id}/";
}

/// <summary>A table a file became, and how many rows it has.</summary>
public sealed record FileTable(string Name, long Rows);

/// <summary>
/// The SQL of FILE sources: their files (<c>source_files</c>) and their data keys
/// (<c>file_data_keys</c>), which the master key ring protects like the server's own keys.
/// </summary>
public sealed class FileCatalog(Database database, SecretProtector protector)
{
    public const int KeySize = 32;

    /// <summary>For <c>secrets rotate</c>: the data keys are re-encrypted under the newest master key; the files stay as they are.</summary>
    public static ServerKeys.KeyTable KeyTable { get; } = new("file_data_keys", "name", name => name);

    // A source's data key never changes (a rotation re-encrypts only its wrapping): a decrypted key is kept.
    private readonly ConcurrentDictionary<long, byte[]> _keys = new();

    public static string KeyName(long sourceId) => "file-data:" + sourceId.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static string NewFileId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>Stores <paramref name="key"/> as the data key of a new source, in the transaction that creates it.</summary>
    public async Task StoreKeyAsync(DbConnection connection, DbTransaction transaction, long sourceId, byte[] key, CancellationToken cancellationToken)
    {
        var name = KeyName(sourceId);
        var wrapped = protector.ProtectServerKey(name, Convert.ToBase64String(key));
        await connection.Command("""
            INSERT INTO file_data_keys (name, source_id, key_id, ciphertext, created_at) VALUES (@name, @source, @key, @ciphertext, @now)
            """, transaction)
            .With("@name", name).With("@source", sourceId).With("@key", wrapped.KeyId).With("@ciphertext", wrapped.Ciphertext)
            .With("@now", DbCommandExtensions.Now()).ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The data key of a source, or null when it has none (never had files, or was deleted).</summary>
    public async Task<byte[]?> KeyAsync(long sourceId, CancellationToken cancellationToken)
    {
        if (_keys.TryGetValue(sourceId, out var cached))
        {
            return cached;
        }

        await using var connection = await database.OpenAsync(cancellationToken);
        await using var reader = await connection.Command("SELECT key_id, ciphertext FROM file_data_keys WHERE name = @name")
            .With("@name", KeyName(sourceId)).ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        var key = Convert.FromBase64String(protector.UnprotectServerKey(KeyName(sourceId), new StoredSecret(reader.GetString(0), reader.GetString(1))));
        if (_keys.Count > 10_000)
        {
            _keys.Clear();
        }

        return _keys.GetOrAdd(sourceId, key);
    }

    /// <summary>Forgets a deleted source's key here; <see cref="EraseKeyAsync"/> removes it from the store.</summary>
    public void Forget(long sourceId) => _keys.TryRemove(sourceId, out _);

    /// <summary>Deletes a source's data key: whatever of its files a backup or an object store's history still holds can no longer be read.</summary>
    public async Task EraseKeyAsync(DbConnection connection, DbTransaction? transaction, long sourceId, CancellationToken cancellationToken)
    {
        Forget(sourceId);
        await connection.Command("DELETE FROM file_data_keys WHERE name = @name", transaction)
            .With("@name", KeyName(sourceId)).ExecuteNonQueryAsync(cancellationToken);
    }

    public static async Task InsertAsync(DbConnection connection, StoredFile file, CancellationToken cancellationToken) =>
        await connection.Command("""
            INSERT INTO source_files (id, source_id, organization_id, filename, stem, format, bytes, status, created_at, updated_at)
            VALUES (@id, @source, @org, @filename, @stem, @format, 0, @status, @now, @now)
            """).With("@id", file.Id).With("@source", file.SourceId).With("@org", file.OrganizationId).With("@filename", file.FileName)
            .With("@stem", file.Stem).With("@format", file.Format).With("@status", file.Status).With("@now", file.CreatedAt)
            .ExecuteNonQueryAsync(cancellationToken);

    /// <summary>
    /// The files of a source, oldest first: those it holds, not those a request to add files is
    /// still receiving, which become the source's only when that request commits (and may yet be refused).
    /// </summary>
    public async Task<List<StoredFile>> ListAsync(long sourceId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await ListAsync(connection, null, sourceId, cancellationToken);
    }

    public static async Task<List<StoredFile>> ListAsync(DbConnection connection, DbTransaction? transaction, long sourceId, CancellationToken cancellationToken)
    {
        await using var reader = await connection.Command(
            $"SELECT {Columns} FROM source_files WHERE source_id = @source AND status <> @uploading ORDER BY created_at, id", transaction)
            .With("@source", sourceId).With("@uploading", FileStatus.Uploading).ExecuteReaderAsync(cancellationToken);
        return await ReadAllAsync(reader, cancellationToken);
    }

    /// <summary>The ids of every file row of a source, those still uploading included.</summary>
    public async Task<List<string>> AllIdsAsync(long sourceId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var reader = await connection.Command("SELECT id FROM source_files WHERE source_id = @source")
            .With("@source", sourceId).ExecuteReaderAsync(cancellationToken);
        var ids = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }

    /// <summary>
    /// The files a query sees: of each table name (stem), the newest ready file. A newer file of the
    /// same name replaces an older one once it is ready, not before.
    /// </summary>
    public static IReadOnlyList<StoredFile> Queryable(IEnumerable<StoredFile> files) =>
        [.. files.Where(f => f.Status == FileStatus.Ready).GroupBy(f => f.Stem, StringComparer.Ordinal).Select(g => g.Last())];

    public const string Columns = "id, source_id, organization_id, filename, stem, format, bytes, status, error, tables, created_at";

    public static async Task<List<StoredFile>> ReadAllAsync(DbDataReader reader, CancellationToken cancellationToken)
    {
        var files = new List<StoredFile>();
        while (await reader.ReadAsync(cancellationToken))
        {
            files.Add(new StoredFile(
                reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetInt64(1), reader.GetInt64(2), reader.GetString(3), reader.GetString(4),
                reader.GetString(5), reader.GetInt64(6), reader.GetString(7), reader.IsDBNull(8) ? null : reader.GetString(8),
                reader.IsDBNull(9) ? [] : ParseTables(reader.GetString(9)), reader.GetInt64(10)));
        }

        return files;
    }

    public static string WriteTables(IEnumerable<FileTable> tables) =>
        new JsonArray([.. tables.Select(t => (JsonNode)new JsonObject { ["name"] = t.Name, ["rows"] = t.Rows })]).ToJsonString();

    private static List<FileTable> ParseTables(string json) =>
        [.. JsonNode.Parse(json)!.AsArray().Select(t => new FileTable(t!["name"]!.GetValue<string>(), t["rows"]!.GetValue<long>()))];
}
