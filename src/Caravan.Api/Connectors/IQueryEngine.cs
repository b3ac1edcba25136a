using Caravan.Api.Connectivity;
using Caravan.Api.Query;

namespace Caravan.Api.Connectors;

/// <summary>
/// Runs one statement on one family of databases, read-only by the database's own means wherever
/// it has them. An engine reports columns and rows through <see cref="QueryRun"/>, which applies
/// the row and byte limits, and throws <see cref="QueryException"/> for failures it recognises
/// (<see cref="ConnectivityException"/> when the database cannot be reached).
/// </summary>
public interface IQueryEngine
{
    /// <summary>The connection types this engine serves.</summary>
    IReadOnlyCollection<SourceType> Types { get; }

    /// <summary>The dialect's statement splitter and read-only check, run by the gateway before <see cref="RunAsync"/>.</summary>
    StatementCheck Statements { get; }

    /// <summary>Why <c>uid</c> cannot be honoured for this type, or null when it is handed to the database.</summary>
    string? UidUnsupported { get; }

    /// <summary>
    /// The catalog statement that lists a table's columns as <c>name</c>, <c>type</c> and
    /// <c>nullable</c> (MCP's describe_table), run through the gateway like any other statement;
    /// null when the engine cannot describe tables. The names never enter the SQL as text: see <see cref="SqlLiterals"/>.
    /// </summary>
    string? DescribeTable(string schema, string table) => null;

    /// <summary>The network-path groups this engine honours; a source holding another is refused (see <see cref="IDriver.AppliedGroups"/>).</summary>
    IReadOnlyCollection<string> AppliedGroups => [];

    Task RunAsync(QueryRun run);
}
