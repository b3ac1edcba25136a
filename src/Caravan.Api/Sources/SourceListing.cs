using System.Data.Common;
using System.Text.Json.Serialization;
using Caravan.Api.Auth;
using Caravan.Api.Connectivity;
using Caravan.Api.Data;
using Caravan.Api.Hosting;
using Caravan.Api.Tokens;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Caravan.Api.Sources;

/// <summary>
/// Additive extensions of <c>GET /api/v1/sources/</c>: <c>search</c> filters by name (a
/// case-insensitive substring), <c>include=last_test</c> adds each source's last connection test.
/// Without them the route is exactly the contract's.
/// </summary>
public static class SourceListing
{
    public const string SearchParameter = "search";
    public const string IncludeParameter = "include";
    public const string LastTestInclude = "last_test";

    public static async Task<IResult> List(HttpRequest request, Database database, LastTests lastTests, CancellationToken cancellationToken)
    {
        var search = request.Query[SearchParameter].ToString().Trim();
        var withTests = request.Query[IncludeParameter].ToString()
            .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Contains(LastTestInclude, StringComparer.Ordinal);
        ConnectionPage page;

        // A token with a list of sources counts and pages those alone; the plain list counts the organization's.
        if (search.Length == 0 && request.HttpContext.Caller().Token?.Sources is null)
        {
            var listed = await SourcesApi.List(request, database, cancellationToken);
            if (!withTests || listed.Result is not Ok<ConnectionPage> { Value: { } plain })
            {
                return listed;
            }

            page = plain;
        }
        else if (await SearchAsync(request, database, search, cancellationToken) is { } found)
        {
            page = found;
        }
        else
        {
            return ApiResults.InvalidPage();
        }

        if (!withTests)
        {
            return TypedResults.Ok(page);
        }

        var tests = page.Results.Count == 0
            ? []
            : await lastTests.ReadAsync(request.HttpContext.Caller().OrganizationId, page.Results[0].Id, page.Results[^1].Id, cancellationToken);
        return TypedResults.Json(
            new ListedConnectionPage(page.Count, page.Next, page.Previous, [.. page.Results.Select(c => new ListedConnection(
                c.Id, c.AccountName, c.Type, c.CreatedAt, c.IsFullyConfigured, tests.GetValueOrDefault(c.Id)))]),
            ApiJson.Context.ListedConnectionPage);
    }

    /// <summary>
    /// One page of the sources whose name contains <paramref name="search"/> (any name when it is
    /// empty) among those the caller may see; null for a page that does not exist.
    /// </summary>
    private static async Task<ConnectionPage?> SearchAsync(HttpRequest request, Database database, string search, CancellationToken cancellationToken)
    {
        var caller = request.HttpContext.Caller();
        var pageSize = Paging.ReadPageSize(request);

        // SQLite's LIKE ignores the case of ASCII letters; PostgreSQL's ILIKE of every letter.
        var like = database.Provider == StorageProvider.Postgres ? "ILIKE" : "LIKE";
        var filter = "organization_id = @org AND deleted_at IS NULL"
            + (search.Length > 0 ? $" AND account_name {like} @pattern ESCAPE '\\'" : string.Empty)
            + caller.SourceCondition(database);
        var pattern = "%" + search.Replace("\\", "\\\\", StringComparison.Ordinal)
            .Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal) + "%";

        DbCommand Bind(DbCommand command)
        {
            command.With("@org", caller.OrganizationId).WithSources(caller, database);
            return search.Length > 0 ? command.With("@pattern", pattern) : command;
        }

        await using var lease = await database.LeaseReadAsync(cancellationToken);
        var count = Convert.ToInt64(
            await Bind(lease.Command($"SELECT COUNT(*) FROM sources WHERE {filter}")).ExecuteScalarAsync(cancellationToken),
            System.Globalization.CultureInfo.InvariantCulture);
        var pages = Paging.PageCount(count, pageSize);
        if (Paging.ReadPage(request, pages) is not { } page)
        {
            return null;
        }

        await using var reader = await Bind(lease.Command($"""
            SELECT id, account_name, type, created_at, is_fully_configured FROM sources
            WHERE {filter} ORDER BY id LIMIT @limit OFFSET @skip
            """)).With("@limit", pageSize).With("@skip", (page - 1) * pageSize).ExecuteReaderAsync(cancellationToken);
        var results = new List<ConnectionResponse>();
        while (await reader.ReadAsync(cancellationToken))
        {
            results.Add(new ConnectionResponse(
                reader.GetInt64(0), reader.GetString(1), reader.GetString(2), DbCommandExtensions.ToTime(reader.GetInt64(3)), reader.GetBoolean(4)));
        }

        var links = Paging.PageLinks(request, page, pages);
        return new ConnectionPage(
            count,
            links.Next,
            links.Previous,
            results);
    }
}

/// <summary>The Connection object plus its last connection test (null when never tested), for <c>include=last_test</c>.</summary>
public sealed record ListedConnection(
    long Id,
    string AccountName,
    string Type,
    DateTimeOffset CreatedAt,
    bool IsFullyConfigured,
    [property: JsonPropertyName("last_test")] LastTest? LastTest);

public sealed record ListedConnectionPage(long Count, string? Next, string? Previous, IReadOnlyList<ListedConnection> Results);
