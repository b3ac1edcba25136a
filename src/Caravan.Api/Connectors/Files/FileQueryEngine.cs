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

    /// <summary>A source is queried once a file of it is converted; until then there is nothing to read.</summary>
    public Task RunAsync(QueryRun run) =>
        DuckDbQueryEngine.RunOnAsync(run, async token =>
        {
            var (session, files) = await sessions.OpenAsync(run.SourceId, DuckDbQueryEngine.MemoryLimit(run), token);
            if (files.Count == 0)
            {
                await session.DisposeAsync();
                throw new QueryException(new QueryFailure(QueryFailureKind.NotConfigured, QueryCodes.NotConfigured,
                    "None of this source's files is converted yet: config.files shows each file's status (a failed file is uploaded again)."));
            }

            return session;
        });
}
