using System.Text.Json.Serialization;
using Caravan.Api.Data;

namespace Caravan.Api.Connectivity;

/// <summary>
/// The outcome of a source's last connection test, as the list shows it (extension): whether it
/// passed, the step that failed and its code, when and how long. No message is kept.
/// </summary>
public sealed record LastTest(
    [property: JsonPropertyName("ok")] bool Ok,
    [property: JsonPropertyName("failed_step")] string? FailedStep,
    [property: JsonPropertyName("code")] string? Code,
    [property: JsonPropertyName("duration_ms")] long DurationMs,
    [property: JsonPropertyName("at")] DateTimeOffset At);

/// <summary>Keeps one row per source (migration 0006): the last test of a stored source replaces the one before.</summary>
public sealed class LastTests(Database database, TimeProvider time)
{
    /// <summary>Records <paramref name="report"/> for the source, unless it was deleted meanwhile.</summary>
    public async Task RecordAsync(long organizationId, long sourceId, TestReport report, CancellationToken cancellationToken)
    {
        var failed = report.Steps.FirstOrDefault(s => s.Status == TestRun.Failed);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        await connection.Command("""
            INSERT INTO source_tests (source_id, organization_id, ok, failed_step, code, duration_ms, at)
            SELECT id, organization_id, @ok, @step, @code, @duration, @at FROM sources
            WHERE id = @id AND organization_id = @org AND deleted_at IS NULL
            ON CONFLICT (source_id) DO UPDATE SET ok = excluded.ok, failed_step = excluded.failed_step,
                code = excluded.code, duration_ms = excluded.duration_ms, at = excluded.at
            """, transaction)
            .With("@ok", report.Ok).With("@step", failed?.Name).With("@code", failed?.Code)
            .With("@duration", report.DurationMs).With("@at", time.GetUtcNow().ToUnixTimeMilliseconds())
            .With("@id", sourceId).With("@org", organizationId)
            .ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>The last tests of the organization's sources with ids from <paramref name="fromId"/> to <paramref name="toId"/>.</summary>
    public async Task<Dictionary<long, LastTest>> ReadAsync(long organizationId, long fromId, long toId, CancellationToken cancellationToken)
    {
        var tests = new Dictionary<long, LastTest>();
        await using var lease = await database.LeaseReadAsync(cancellationToken);
        await using var reader = await lease.Command("""
            SELECT source_id, ok, failed_step, code, duration_ms, at FROM source_tests
            WHERE organization_id = @org AND source_id >= @from AND source_id <= @to
            """).With("@org", organizationId).With("@from", fromId).With("@to", toId).ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            tests[reader.GetInt64(0)] = new LastTest(
                reader.GetBoolean(1),
                await reader.IsDBNullAsync(2, cancellationToken) ? null : reader.GetString(2),
                await reader.IsDBNullAsync(3, cancellationToken) ? null : reader.GetString(3),
                reader.GetInt64(4),
                DbCommandExtensions.ToTime(reader.GetInt64(5)));
        }

        return tests;
    }
}
