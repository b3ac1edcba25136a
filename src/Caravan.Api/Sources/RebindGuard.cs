using System.Net;
using Caravan.Api.Hosting;
using Caravan.Api.Connectors;

namespace Caravan.Api.Sources;

/// <summary>
/// The rebind guard (contract section 8): an update-config that changes where a connection goes
/// while stored secrets would be kept is refused, naming every secret to send again. Otherwise
/// anyone who may edit a source could point it at a server of their own and have Caravan deliver
/// the stored password there, with a connection test or the next query. Part of validation: it
/// runs on update-config and on <c>?verify=true</c>'s preview, before anything is written or any
/// connection is made.
/// </summary>
internal static class RebindGuard
{
    /// <summary>
    /// Adds an error for each stored secret <paramref name="change"/> would keep while it moves the
    /// source; <paramref name="change"/> is read after the type's own rules ran (a connection string
    /// already split into its parts). Where a connection goes is the type's destination fields.
    /// </summary>
    public static void Check(SourceType type, SourceChange change, ConfigView stored, ValidationErrors errors)
    {
        // A value that carries its own credentials (a new connection string) replaces every stored one.
        if (type.Fields.Any(f => f.CarriesCredentials && change.Sent.Contains(f.Name)))
        {
            return;
        }

        foreach (var destinationField in type.StoredFields.Where(f => f.IsDestination))
        {
            // A host refused for a reason of its own will not be stored: it moves nothing. A URL
            // goes where its host is: a new path or port on the same host is not a move.
            var field = destinationField.Name;
            if (!change.Settings.TryGetValue(field, out var sent) || sent?.GetValue<string>() is not { } destination
                || errors.Has(field)
                || SameDestination(stored.Text(field) is { } before ? destinationField.DestinationOf(before) : null, destinationField.DestinationOf(destination)))
            {
                continue;
            }

            foreach (var secret in KeptSecrets(type, change, stored, destinationField.Group))
            {
                var (resend, message) = type.Resend(field, secret);
                errors.Add(resend, message);
            }
        }
    }

    /// <summary>
    /// Stored secrets the change neither replaces nor clears, in the type's order, that a move of a
    /// destination in <paramref name="group"/> would deliver elsewhere: the database's own secrets
    /// always; a group's (the tunnel's password and key) when the destination is in that group, as
    /// moving the database behind the same bastion sends the tunnel's credentials where they went.
    /// </summary>
    private static IEnumerable<string> KeptSecrets(SourceType type, SourceChange change, ConfigView stored, string? group) =>
        type.StoredFields.Where(f => f.IsSecret && (f.Group is null || f.Group == group)).Select(f => f.Name)
            .Concat(type.StoredSecrets).Distinct(StringComparer.Ordinal)
            .Where(secret => stored.SecretNames.Contains(secret) && !change.Secrets.ContainsKey(secret));

    /// <summary>
    /// True when two host names (or Snowflake accounts) name the same place: compared without case,
    /// IPv6 brackets or a final dot, and IP literals by address (<c>::1</c> is <c>0:0:0:0:0:0:0:1</c>).
    /// A destination that was not set before is a change.
    /// </summary>
    internal static bool SameDestination(string? stored, string sent)
    {
        if (stored is null)
        {
            return false;
        }

        var before = Canonical(stored);
        var after = Canonical(sent);
        if (IPAddress.TryParse(before, out var storedAddress) && IPAddress.TryParse(after, out var sentAddress))
        {
            return storedAddress.Equals(sentAddress);
        }

        return string.Equals(before, after, StringComparison.OrdinalIgnoreCase);
    }

    private static string Canonical(string host)
    {
        var name = HostNames.Normalize(host.Trim());
        return name.Length > 1 && name.EndsWith('.') ? name[..^1] : name;
    }
}
