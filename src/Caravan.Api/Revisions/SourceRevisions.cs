using System.Data.Common;
using System.Globalization;
using System.Text.Json.Nodes;
using Caravan.Api.Data;

namespace Caravan.Api.Revisions;

/// <summary>The SQL of the revisions table, shared by both providers.</summary>
internal static class SourceRevisions
{
    /// <summary>
    /// Appends <paramref name="revision"/> in the transaction of its change and returns it with its
    /// number. Every writer holds the source's row (SQLite's write lock, PostgreSQL's row lock)
    /// when it gets here, so the next number cannot be taken twice.
    /// </summary>
    public static async Task<Revision> AppendAsync(
        DbConnection connection, DbTransaction transaction, Revision revision, CancellationToken cancellationToken)
    {
        var number = await connection.Command("""
            INSERT INTO source_revisions (source_id, number, organization_id, at, key_id, action, changes)
            SELECT @source, COALESCE(MAX(number), 0) + 1, @org, @at, @key, @action, @changes
            FROM source_revisions WHERE source_id = @source
            RETURNING number
            """, transaction)
            .With("@source", revision.SourceId).With("@org", revision.OrganizationId).With("@at", revision.At)
            .With("@key", revision.KeyId).With("@action", revision.Action).With("@changes", revision.Changes.ToJsonString())
            .ExecuteScalarAsync(cancellationToken);
        return revision with { Number = Convert.ToInt64(number, CultureInfo.InvariantCulture) };
    }

    public static async Task<long> CountAsync(DbConnection connection, long organizationId, long sourceId, CancellationToken cancellationToken)
    {
        var count = await connection.Command("SELECT COUNT(*) FROM source_revisions WHERE source_id = @source AND organization_id = @org")
            .With("@source", sourceId).With("@org", organizationId).ExecuteScalarAsync(cancellationToken);
        return Convert.ToInt64(count, CultureInfo.InvariantCulture);
    }

    /// <summary>A page of a source's revisions, newest first.</summary>
    public static async Task<List<RevisionResponse>> PageAsync(
        DbConnection connection, long organizationId, long sourceId, long offset, int limit, CancellationToken cancellationToken)
    {
        await using var reader = await connection.Command("""
            SELECT r.number, r.at, o.name, r.key_id, r.action, r.changes
            FROM source_revisions r JOIN organizations o ON o.id = r.organization_id
            WHERE r.source_id = @source AND r.organization_id = @org
            ORDER BY r.number DESC LIMIT @limit OFFSET @offset
            """).With("@source", sourceId).With("@org", organizationId).With("@limit", limit).With("@offset", offset)
            .ExecuteReaderAsync(cancellationToken);
        var results = new List<RevisionResponse>(Math.Min(limit, 1000));
        while (await reader.ReadAsync(cancellationToken))
        {
            results.Add(new RevisionResponse(
                reader.GetInt64(0),
                DbCommandExtensions.ToTime(reader.GetInt64(1)),
                new RevisionActor(reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3)),
                reader.GetString(4),
                JsonNode.Parse(reader.GetString(5))!.AsObject()));
        }

        return results;
    }
}
