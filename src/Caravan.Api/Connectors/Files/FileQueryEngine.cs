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

    public Task RunAsync(QueryRun run) =>
        DuckDbQueryEngine.RunOnAsync(run, async token => (await sessions.OpenAsync(run.SourceId, DuckDbQueryEngine.MemoryLimit(run), token)).Session);
}
