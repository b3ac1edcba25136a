using Caravan.Api.Connectivity;
using DuckDB.NET.Data;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// Tests and discovery of FILE sources. The test: <c>files</c> (every file converted; a file still
/// converting or failed is named), <c>connect</c> (each converted database fetched from the store
/// and opened with its key), <c>query</c> (every table counted, so every file is read), <c>schemas</c>
/// (the tables). Discovery lists the tables with their columns.
/// </summary>
public sealed class FileDriver(FileSessions sessions, FileCatalog catalog) : IDriver
{
    public const string FilesStep = "files";

    /// <summary>What a session of a test or discovery may use; queries have the replica's result budget instead.</summary>
    private const string MemoryLimit = "64MB";

    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<FileType>()];

    public IReadOnlyList<string> Steps { get; } = [FilesStep, TestSteps.Connect, TestSteps.Query, TestSteps.Schemas];

    public async Task TestAsync(TestRun run, SourceConnection connection)
    {
        var ready = await run.StepAsync(FilesStep, async token =>
        {
            var files = await catalog.ListAsync(SourceIdOf(connection), token);
            var queryable = FileCatalog.Queryable(files);
            var waiting = files.Where(f => f.Status != FileStatus.Ready && !Superseded(f, files)).ToList();
            if (waiting.Count > 0)
            {
                throw new ConnectivityException(FailureCodes.FileNotReady, string.Join("; ", waiting.Select(f => f.Status == FileStatus.Failed
                    ? $"{f.FileName} could not be converted: {f.Error}"
                    : $"{f.FileName} is still being converted")));
            }

            return files.Count == 0 ? throw new ConnectivityException(FailureCodes.FileNotReady, "The source has no files.") : queryable.Count;
        });
        if (ready == 0)
        {
            return;
        }

        var opened = await run.StepAsync(TestSteps.Connect, token => sessions.OpenAsync(SourceIdOf(connection), MemoryLimit, token));
        if (opened.Session is not { } session)
        {
            return;
        }

        await using (session)
        {
            await run.StepAsync(TestSteps.Query, token => Task.Run(() =>
            {
                foreach (var table in opened.Files.SelectMany(f => f.Tables))
                {
                    using var command = session.CreateCommand();
                    command.CommandText = $"SELECT count(*) FROM \"{table.Name.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
                    command.ExecuteScalar();
                }

                return true;
            }, token));
            await run.StepAsync(TestSteps.Schemas, token => Task.Run(() => Tables(session).Count, token));
        }
    }

    public async Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken) =>
        (await DiscoverAsync(connection, cancellationToken))!.Names;

    public async Task<Discovery?> DiscoverAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        var (session, _) = await sessions.OpenAsync(SourceIdOf(connection), MemoryLimit, cancellationToken);
        await using (session)
        {
            var tables = await Task.Run(() => Tables(session), cancellationToken);
            return new Discovery(connection.Type.SchemaKind, [.. tables.Keys], tables);
        }
    }

    /// <summary>A file that failed or waits is no problem once a newer file of the same name is ready: that one replaced it.</summary>
    private static bool Superseded(StoredFile file, IReadOnlyList<StoredFile> files) =>
        files.Any(f => f.Stem == file.Stem && f.Status == FileStatus.Ready && f.CreatedAt >= file.CreatedAt && f.Id != file.Id);

    private static SortedDictionary<string, IReadOnlyList<DiscoveredColumn>> Tables(DuckDBConnection session)
    {
        using var command = session.CreateCommand();
        command.CommandText = """
            SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = 'main' AND table_catalog LIKE 'f\_%' ESCAPE '\'
            ORDER BY table_name, ordinal_position
            """;
        using var reader = command.ExecuteReader();
        var tables = new SortedDictionary<string, IReadOnlyList<DiscoveredColumn>>(StringComparer.Ordinal);
        while (reader.Read())
        {
            var name = reader.GetString(0);
            if (!tables.TryGetValue(name, out var columns))
            {
                tables[name] = columns = new List<DiscoveredColumn>();
            }

            ((List<DiscoveredColumn>)columns).Add(new DiscoveredColumn(reader.GetString(1), reader.GetString(2)));
        }

        return tables;
    }

    private static long SourceIdOf(SourceConnection connection) => connection.SourceId
        ?? throw new ConnectivityException(FailureCodes.FileNotReady,
            "A FILE source is tested once it exists: upload its files with POST /api/v1/uploads/upload/, then test it by id.");
}
