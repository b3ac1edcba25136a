using System.Text.Json.Nodes;

namespace Caravan.Api.Connectors;

/// <summary>
/// What a type keeps about its sources outside their rows (a FILE source's files and their data):
/// the config readback shows it, and deleting a source erases it.
/// </summary>
public interface ISourceHoldings
{
    SourceType Type { get; }

    /// <summary>Adds what the config readback shows of the holdings to <paramref name="config"/>.</summary>
    Task DescribeAsync(long sourceId, JsonObject config, CancellationToken cancellationToken);

    /// <summary>Erases the holdings of a source that was just deleted.</summary>
    Task EraseAsync(long sourceId, CancellationToken cancellationToken);
}
