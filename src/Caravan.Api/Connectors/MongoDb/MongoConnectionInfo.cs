namespace Caravan.Api.Connectors.MongoDb;

/// <summary>
/// The parts of a MongoDB connection string. Hosts are valid per <see cref="HostNames.Check"/> and
/// normalized; the password itself is not kept, only whether the string carried one (an empty
/// password after a colon counts, as the MongoDB URI specification distinguishes it from none).
/// <see cref="Options"/> has lower-cased keys, in input order; a repeated key keeps its last value.
/// </summary>
public sealed record MongoConnectionInfo(
    bool IsSrv,
    IReadOnlyList<(string Host, int? Port)> Hosts,
    string? Username,
    bool HasPassword,
    string? Database,
    IReadOnlyDictionary<string, string> Options);
