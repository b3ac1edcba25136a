using Caravan.Api.Connectivity;
namespace Caravan.Api.Connectors;

/// <summary>What discovery found: the kind of container and the names, system ones excluded.</summary>
public sealed record Discovery(string Kind, IReadOnlyList<string> Names);

/// <summary>
/// Talks to one family of databases. A driver runs a test's steps after <c>resolve</c>, <c>egress</c>
/// and <c>connect</c> (see <see cref="NetworkPath"/>), and lists schemas for discovery. Failures it
/// knows are <see cref="ConnectivityException"/>s with a stable code; anything else becomes
/// <c>driver_error</c>. Messages may contain secrets: they are scrubbed before they leave.
/// </summary>
public interface IDriver
{
    /// <summary>The connection types (SourceType.Name) this driver serves.</summary>
    IReadOnlyCollection<string> Types { get; }

    Task TestAsync(TestRun run, SourceConnection connection);

    Task<Discovery> DiscoverAsync(SourceConnection connection, CancellationToken cancellationToken);
}
