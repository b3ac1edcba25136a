using System.Globalization;
using Caravan.Api.Connectors.MotherDuck;
using Caravan.Api.Query;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// FILE sources are queried with DuckDB, DuckDB's statement check first (the functions that read
/// files, URLs or other databases are refused before anything runs), then on a session of
/// <see cref="FileSessions"/>, which could not reach a file or the network anyway.
/// </summary>
public sealed class FileQueryEngine(FileSessions sessions) : IQueryEngine
{
    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<FileType>()];

    public StatementCheck Statements => DuckDbQueryEngine.Check;

    public string? UidUnsupported =>
        "FILE sources have no row-level security to hand uid to; Caravan refuses it rather than ignore it.";

    /// <summary>A file's tables are known by name alone (names are unique within a source); <paramref name="schema"/> is <c>main</c>.</summary>
    public string DescribeTable(string schema, string table) => $"""
        SELECT column_name AS name, data_type AS type, is_nullable = 'YES' AS nullable
        FROM information_schema.columns
        WHERE table_schema = decode(unhex('{SqlLiterals.Hex(schema)}')) AND table_name = decode(unhex('{SqlLiterals.Hex(table)}'))
        ORDER BY ordinal_position
        """;

    /// <summary>
    /// Runs on the files converted so far (the gateway does not wait for every file: a source whose
    /// file is being replaced answers from the old one); with none converted yet, a 409 that says so.
    /// </summary>
    public Task RunAsync(QueryRun run) =>
        DuckDbQueryEngine.RunOnAsync(run, async token =>
        {
            var (session, files) = await sessions.OpenAsync(run.SourceId, DuckDbQueryEngine.MemoryLimit(run), token);
            if (files.Count > 0)
            {
                return session;
            }

            await session.DisposeAsync();
            throw new QueryException(new QueryFailure(QueryFailureKind.NotConfigured, QueryCodes.NotConfigured, string.Create(CultureInfo.InvariantCulture,
                $"No file of this source is converted yet: config.files of GET /api/v1/sources/{run.SourceId}/config/ shows each file's status and error.")));
        });
}
