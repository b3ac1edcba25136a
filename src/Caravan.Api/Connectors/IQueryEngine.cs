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
    /// <summary>The connection types (SourceType.Name) this engine serves.</summary>
    IReadOnlyCollection<string> Types { get; }

    /// <summary>The dialect's statement splitter and read-only check, run by the gateway before <see cref="RunAsync"/>.</summary>
    StatementCheck Statements { get; }

    /// <summary>Why <c>uid</c> cannot be honoured for this type, or null when it is handed to the database.</summary>
    string? UidUnsupported { get; }

    Task RunAsync(QueryRun run);
}
