namespace Caravan.Api.Revisions;

/// <summary>
/// The audit log: one structured event per change of a source, under its own category
/// (<see cref="Category"/>) so operators can route it apart from the rest (docs/operations.md).
/// It carries field names only, never a value: no secret can reach it, and no configuration either.
/// Written after the change committed, so it never reports a change that did not happen.
/// </summary>
public sealed partial class AuditLog(ILoggerFactory loggers)
{
    public const string Category = "Caravan.Audit";

    /// <summary>The event id of <see cref="Record"/>; part of the operations contract, do not change it.</summary>
    public const int SourceChangedEventId = 7001;

    private readonly ILogger _logger = loggers.CreateLogger(Category);

    public void Record(Revision revision) =>
        SourceChanged(revision.Action, revision.Organization, revision.KeyId, revision.SourceId, revision.Number, string.Join(',', revision.Fields));

    [LoggerMessage(EventId = SourceChangedEventId, EventName = "SourceChanged", Level = LogLevel.Information,
        Message = "Source {SourceId} {Action} by organization {Organization} with key {KeyId}: revision {Revision}, fields [{Fields}]")]
    private partial void SourceChanged(string action, string organization, string? keyId, long sourceId, long revision, string fields);
}
