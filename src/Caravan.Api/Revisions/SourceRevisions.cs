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
        DbConnection connection, DbTransaction transaction, Revision revision, CancellationToken cancellationToken) =>
        Numbered(revision, await Append(connection.Command(AppendSql, transaction), revision).ExecuteScalarAsync(cancellationToken));

    /// <summary>
    /// As <see cref="AppendAsync"/>, as the last statement of its write, after <paramref name="change"/>
    /// when there is one (the row's write, not run yet, with parameters of its own): one round trip
    /// for both, and on PostgreSQL the commit with them (<see cref="Database.ExecuteLastAsync"/>).
    /// </summary>
    public static async Task<Revision> AppendLastAsync(
        DbConnection connection, DbTransaction transaction, DbCommand? change, Revision revision, CancellationToken cancellationToken)
    {
        DbCommand command;
        if (change is not null && Database.SendsCommitWithLast(transaction))
        {
            change.CommandText += ";\n" + AppendSql;
            command = change;
        }
        else
        {
            // SQLite: no round trip to save, and its commands are compiled once (their text stays as it is).
            if (change is not null)
            {
                await change.ExecuteNonQueryAsync(cancellationToken);
            }

            command = connection.Command(AppendSql, transaction);
        }

        return Numbered(revision, await Database.ExecuteLastAsync(Append(command, revision), transaction, cancellationToken));
    }

    private const string AppendSql = """
        INSERT INTO source_revisions (source_id, number, organization_id, at, key_id, action, changes)
        SELECT @rev_source, COALESCE(MAX(number), 0) + 1, @rev_org, @rev_at, @rev_key, @rev_action, @rev_changes
        FROM source_revisions WHERE source_id = @rev_source
        RETURNING number
        """;

    private static DbCommand Append(DbCommand command, Revision revision) => command
        .With("@rev_source", revision.SourceId).With("@rev_org", revision.OrganizationId).With("@rev_at", revision.At)
        .With("@rev_key", revision.KeyId).With("@rev_action", revision.Action).With("@rev_changes", revision.Changes.ToJsonString());

    private static Revision Numbered(Revision revision, object? number) =>
        revision with { Number = Convert.ToInt64(number, CultureInfo.InvariantCulture) };

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
