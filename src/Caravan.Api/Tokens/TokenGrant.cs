using Caravan.Api.Hosting;
using System.Data.Common;
using System.Globalization;
using Caravan.Api.Auth;
using Caravan.Api.Data;

namespace Caravan.Api.Tokens;

/// <summary>What a token may do (contract section 9.1). <see cref="Query"/> includes <see cref="Read"/>.</summary>
public enum TokenScope
{
    /// <summary>List and get the token's sources, their schemas, the read-only MCP tools.</summary>
    Read,

    /// <summary>All of <see cref="Read"/>, plus the query route and the MCP tool <c>run_query</c>.</summary>
    Query,
}

/// <summary>
/// What a verified token grants: the end user it speaks for (<see cref="Uid"/>, handed to the
/// database for row-level security), the organization and the API key that minted it, its scope,
/// and the sources it may see (null: every source of the organization at the time of each request).
/// </summary>
public sealed record TokenGrant(
    string Uid,
    string Organization,
    string KeyId,
    TokenScope Scope,
    IReadOnlyList<long>? Sources,
    DateTimeOffset Expires)
{
    /// <summary>The most sources one token may name; more would make a token too long for a header.</summary>
    public const int MaxSources = 100;

    /// <summary>Whether the token's scope covers <paramref name="needed"/>.</summary>
    public bool Allows(TokenScope needed) => Scope >= needed;

    /// <summary>Whether the token may see the source <paramref name="sourceId"/> (if it exists in its organization).</summary>
    public bool Sees(long sourceId) => Sources is null || Sources.Contains(sourceId);

}

/// <summary>
/// Opens a route (as endpoint metadata, see <see cref="TokenAccessExtensions.AllowTokens"/>) or an
/// MCP tool (as an attribute of its method) to tokens whose scope covers <see cref="Scope"/>. A
/// route or tool without it answers every token with 403, changing nothing (deny by default): one
/// added later is closed to tokens until it says otherwise.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class AllowTokensAttribute(TokenScope scope) : Attribute
{
    public TokenScope Scope => scope;

    /// <summary>Whether <paramref name="grant"/> may use what carries <paramref name="access"/> (nothing, when it carries none).</summary>
    public static bool Admits(AllowTokensAttribute? access, TokenGrant grant) => access is not null && grant.Allows(access.Scope);
}

public static class TokenAccessExtensions
{
    /// <summary>
    /// Opens the route to tokens whose scope covers <paramref name="scope"/> (see <see cref="AllowTokensAttribute"/>),
    /// and says so in the OpenAPI document.
    /// </summary>
    public static TBuilder AllowTokens<TBuilder>(this TBuilder builder, TokenScope scope)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new AllowTokensAttribute(scope)).Declares((operation, document) => TokenDocs.DescribeOpen(scope, operation, document));

    /// <summary>
    /// The condition that limits a query of <c>sources</c> to what the caller may see, to append to
    /// its <c>WHERE</c>: empty for an API key or a token without a list (bind <c>@srcs</c> with
    /// <see cref="WithSources"/>).
    /// </summary>
    public static string SourceCondition(this Caller caller, Database database, string column = "id") =>
        caller.Token?.Sources is null ? string.Empty : " AND " + SourceIdsCondition(database, column);

    /// <summary>Binds <c>@srcs</c> of <see cref="SourceCondition"/>, when it has one.</summary>
    public static DbCommand WithSources(this DbCommand command, Caller caller, Database database) =>
        caller.Token?.Sources is { } ids ? command.WithSourceIds(database, ids) : command;

    /// <summary>
    /// <paramref name="column"/> is one of the ids bound as <c>@srcs</c> (<see cref="WithSourceIds"/>).
    /// One text per store, whatever the ids, so the stores' statement caches hold one statement for all.
    /// </summary>
    public static string SourceIdsCondition(Database database, string column) =>
        database.Provider == StorageProvider.Postgres ? $"{column} = ANY(@srcs)" : $"{column} IN (SELECT value FROM json_each(@srcs))";

    /// <summary>Binds <c>@srcs</c> of <see cref="SourceIdsCondition"/>: an array on PostgreSQL, a JSON array on SQLite.</summary>
    public static DbCommand WithSourceIds(this DbCommand command, Database database, IReadOnlyCollection<long> ids) =>
        database.Provider == StorageProvider.Postgres
            ? command.With("@srcs", ids.ToArray())
            : command.With("@srcs", "[" + string.Join(",", ids.Select(id => id.ToString(CultureInfo.InvariantCulture))) + "]");
}
