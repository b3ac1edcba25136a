using System.Text.Json.Nodes;
using Caravan.Api.Auth;

namespace Caravan.Api.Revisions;

/// <summary>What a revision records was done to the source.</summary>
public static class RevisionActions
{
    /// <summary>Any of the create routes.</summary>
    public const string Create = "create";

    /// <summary>update-config, or PUT/PATCH of the source (its name).</summary>
    public const string Update = "update";

    /// <summary>DELETE: the source is gone from the API and its secrets are erased.</summary>
    public const string Delete = "delete";

    /// <summary><c>secrets rotate</c>: the secrets were re-encrypted under a new master key; no value changed.</summary>
    public const string Rotate = "rotate";

    public static readonly IReadOnlyList<string> All = [Create, Update, Delete, Rotate];
}

/// <summary>
/// One change of a source, as stored and logged: who (organization and API key; no key for the
/// command line), when, what, and which fields changed how — never a secret value.
/// </summary>
public sealed record Revision(
    long SourceId, long OrganizationId, string Organization, string? KeyId, string Action, long At, JsonObject Changes, long Number = 0)
{
    public static Revision By(Caller caller, long sourceId, string action, long at, JsonObject changes) =>
        new(sourceId, caller.OrganizationId, caller.OrganizationName, caller.KeyId, action, at, changes);

    /// <summary>The names of the changed fields, in the order of <see cref="Changes"/>.</summary>
    public IReadOnlyList<string> Fields => [.. Changes.Select(c => c.Key)];
}

/// <summary>The actor of a revision on the wire: the organization, and the API key (null for the command line).</summary>
public sealed record RevisionActor(string Org, string? KeyId);

/// <summary>A revision on the wire (contract section 8).</summary>
public sealed record RevisionResponse(long Number, DateTimeOffset At, RevisionActor Actor, string Action, JsonObject Changes);

public sealed record RevisionPage(long Count, string? Next, string? Previous, IReadOnlyList<RevisionResponse> Results);
