using Caravan.Api.Connectivity;
using Caravan.Api.Connectors.MotherDuck;
using DuckDB.NET.Data;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// Opens what a FILE source's queries run on: a private in-memory DuckDB database with each
/// queryable file's database attached read-only (decrypted by DuckDB with the file's key as it
/// reads), its tables found by name through the search path. Then the session is shut: external
/// access off (no file, URL or other database can be read or attached), extensions neither
/// installed nor loaded, and the configuration locked, so no statement can undo any of it.
/// </summary>
public sealed class FileSessions(FileCatalog catalog, IFileStore store)
{
    /// <summary>Settings that close the session, in order: the last one locks the others.</summary>
    private static readonly string[] Lockdown =
    [
        "SET enable_external_access = false",
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET allow_community_extensions = false",
        "SET lock_configuration = true",
    ];

    public async Task<(DuckDBConnection Session, IReadOnlyList<StoredFile> Files)> OpenAsync(
        long sourceId, string memoryLimit, CancellationToken cancellationToken)
    {
        var files = FileCatalog.Queryable(await catalog.ListAsync(sourceId, cancellationToken));
        var key = files.Count == 0 ? null : await catalog.KeyAsync(sourceId, cancellationToken)
            ?? throw new ConnectivityException(FailureCodes.DriverError, "The source's data key is missing; its files cannot be read.");
        var attachments = new List<(string Catalog, string Path, string Key)>();
        foreach (var file in files)
        {
            try
            {
                attachments.Add((file.Catalog, await store.LocalCopyAsync(file.DatabaseKey, cancellationToken), FileCrypto.DatabaseKey(key, file.Id)));
            }
            catch (FileNotFoundException)
            {
                throw new ConnectivityException(FailureCodes.DriverError, $"The converted data of {file.FileName} is missing from the file store.");
            }
        }

        var settings = new DuckDBConnectionStringBuilder
        {
            DataSource = ":memory:",
            AutoinstallKnownExtensions = false,
            AutoloadKnownExtensions = false,
            AllowPersistentSecrets = false,
        };
        settings["memory_limit"] = memoryLimit;
        var session = await MotherDuckDriver.OpenAsync(settings.ConnectionString, cancellationToken);
        try
        {
            await Task.Run(() =>
            {
                foreach (var (name, path, databaseKey) in attachments)
                {
                    Execute(session, $"ATTACH '{Quote(path)}' AS \"{name}\" (ENCRYPTION_KEY '{Quote(databaseKey)}', READ_ONLY)");
                }

                if (attachments.Count > 0)
                {
                    Execute(session, $"SET search_path = '{Quote(string.Join(',', attachments.Select(a => a.Catalog + ".main")))}'");
                }

                foreach (var statement in Lockdown)
                {
                    Execute(session, statement);
                }
            }, cancellationToken);
            return (session, files);
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
    }

    private static void Execute(DuckDBConnection session, string sql)
    {
        using var command = session.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static string Quote(string text) => text.Replace("'", "''", StringComparison.Ordinal);
}
