using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors;

/// <summary>
/// What discovery found: the kind of container (the type's <see cref="SourceType.SchemaKind"/>) and
/// the names, system ones excluded; for a type whose entries are tables (FILE), their columns too.
/// </summary>
public sealed record Discovery(
    string Kind,
    IReadOnlyList<string> Names,
    IReadOnlyDictionary<string, IReadOnlyList<DiscoveredColumn>>? Columns = null,
    IReadOnlyDictionary<string, DiscoveredTool>? Tools = null);

/// <summary>A tool of a remote MCP server: what it says it does and the arguments it takes (a JSON Schema).</summary>
public sealed record DiscoveredTool(string? Description, System.Text.Json.JsonElement InputSchema);

/// <summary>A column of a discovered table: its name and the database's name for its type.</summary>
public sealed record DiscoveredColumn(string Name, string Type);

/// <summary>
/// Talks to one family of databases. A driver runs a test's steps after <c>resolve</c>, <c>egress</c>
/// and <c>connect</c> (see <see cref="NetworkPath"/>), and lists schemas for discovery. Failures it
/// knows are <see cref="ConnectivityException"/>s with a stable code; anything else becomes
/// <c>driver_error</c>. Messages may contain secrets: they are scrubbed before they leave.
/// </summary>
public interface IDriver
{
    /// <summary>The connection types this driver serves.</summary>
    IReadOnlyCollection<SourceType> Types { get; }

    /// <summary>The steps of this driver's test, in report order: <see cref="TestSteps.Standard"/> unless it has no TLS of its own.</summary>
    IReadOnlyList<string> Steps => TestSteps.Standard;

    /// <summary>
    /// The network-path groups (<see cref="NetworkPathFields"/>) this driver honours. A source that
    /// holds another is refused before any connection rather than reached around it.
    /// </summary>
    IReadOnlyCollection<string> AppliedGroups => [];

    /// <summary>Runs the test's steps (planned by the caller from <see cref="Steps"/>).</summary>
    Task TestAsync(TestRun run, SourceConnection connection);

    /// <summary>The schemas (databases, datasets) of the source, system ones excluded.</summary>
    Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken);

    /// <summary>Discovery with more than the names (a FILE source's tables with their columns); null when <see cref="ListSchemasAsync"/> says all.</summary>
    Task<Discovery?> DiscoverAsync(SourceConnection connection, CancellationToken cancellationToken) => Task.FromResult<Discovery?>(null);
}

/// <summary>The steps of a connection test, named the same for every type so reports compare.</summary>
public static class TestSteps
{
    public const string Resolve = "resolve";
    public const string Egress = "egress";
    public const string Connect = "connect";
    public const string Tls = "tls";
    public const string Authenticate = "authenticate";
    public const string Query = "query";
    public const string Schemas = "schemas";

    /// <summary>The steps of a test of a database reached over the network.</summary>
    public static IReadOnlyList<string> Standard { get; } = [Resolve, Egress, Connect, Tls, Authenticate, Query, Schemas];

    /// <summary>The same without a TLS step of its own (an in-process database whose extension opens its own connections).</summary>
    public static IReadOnlyList<string> WithoutTls { get; } = [Resolve, Egress, Connect, Authenticate, Query, Schemas];
}
