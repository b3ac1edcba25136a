using System.Text;

namespace Caravan.Api.Connectors;

/// <summary>
/// The parts of a Postgres or SQL Server connection string. <see cref="Host"/> is valid per
/// <see cref="HostNames.Check"/> and already normalized (no brackets around IPv6). Empty user,
/// password and database values are reported as null. <see cref="Options"/> holds every other
/// parameter with lower-cased keys, in input order.
/// </summary>
public sealed record ParsedConnectionString(
    string Host,
    int? Port,
    string? Username,
    string? Password,
    string? Database,
    IReadOnlyDictionary<string, string> Options)
{
    // The generated ToString would print the password (and option values such as sslpassword)
    // into any log line or assertion message that mentions this record.
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("Host = ").Append(Host)
            .Append(", Port = ").Append(Port)
            .Append(", Username = ").Append(Username)
            .Append(", Password = ").Append(Password is null ? "" : "***")
            .Append(", Database = ").Append(Database)
            .Append(", Options = [").AppendJoin(", ", Options.Keys).Append(']');
        return true;
    }
}
