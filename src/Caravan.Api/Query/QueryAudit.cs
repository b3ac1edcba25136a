namespace Caravan.Api.Query;

/// <summary>
/// The audit record of queries, in the logger category <c>Caravan.Audit</c>: who ran one, on which
/// source, how long it took, how many rows, how it ended. Never the SQL text (it may hold data),
/// only its length; never the <c>uid</c> value, only whether one was given; never a secret.
/// </summary>
public static partial class QueryAudit
{
    public const string Category = "Caravan.Audit";

    [LoggerMessage(EventId = 6001, EventName = "QueryRun", Level = LogLevel.Information,
        Message = "Query {Outcome} on source {SourceId} ({SourceType}) by organization {OrganizationId} key {KeyId}: "
            + "{RowCount} rows, truncated {Truncated}, {DurationMs} ms, status {Status}, code {Code}, sql length {SqlLength}, uid given {UidGiven}")]
    public static partial void QueryRan(
        ILogger logger, string outcome, long sourceId, string sourceType, long organizationId, string keyId,
        long rowCount, bool truncated, long durationMs, int status, string code, int sqlLength, bool uidGiven);
}
