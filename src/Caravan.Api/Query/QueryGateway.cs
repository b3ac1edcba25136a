using Caravan.Api.Connectors;
using System.Diagnostics;
using Caravan.Api.Auth;
using Caravan.Api.Connectivity;
using Caravan.Api.Sources;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Query;

/// <summary>
/// The one door to a source's database for a statement: finds the source in the caller's
/// organization, checks the request against its type (one statement, which the dialect's
/// <see cref="StatementCheck"/> lets through), waits for a slot on the source, runs the
/// statement read-only through the type's engine within the limits, and records the query in the
/// audit log. Used by the HTTP route and usable without HTTP (the MCP server).
/// </summary>
public sealed class QueryGateway(
    SourceConnections sources,
    PreparedSources prepared,
    IEnumerable<IQueryEngine> engines,
    QueryConcurrency concurrency,
    QueryPools pools,
    ResultMemory memory,
    IOptions<QueryOptions> options,
    ILoggerFactory loggers)
{
    /// <summary>How long after the time limit the gateway itself gives up, should the database not have stopped the statement.</summary>
    public static readonly TimeSpan Backstop = TimeSpan.FromSeconds(2);

    /// <summary>The 409 of a source whose configuration is incomplete (for types whose queries wait for it).</summary>
    public const string NotConfiguredMessage = "The source is not fully configured yet; complete its configuration with update-config.";

    private readonly Dictionary<SourceType, IQueryEngine> _engines = engines
        .SelectMany(e => e.Types.Select(t => (Type: t, Engine: e)))
        .ToDictionary(p => p.Type, p => p.Engine);

    /// <summary>The engine that runs statements on sources of <paramref name="type"/>, or null when Caravan runs none there.</summary>
    public IQueryEngine? EngineFor(SourceType type) => _engines.GetValueOrDefault(type);

    private readonly ILogger _audit = loggers.CreateLogger(QueryAudit.Category);
    private readonly ILogger _logger = loggers.CreateLogger<QueryGateway>();

    /// <summary>The operator's row ceiling, which readers of a request clamp <c>max_rows</c> to.</summary>
    public int MaxRowsLimit => options.Value.MaxRowsLimit;

    /// <summary>Runs one statement; rows go to <paramref name="sink"/>. Returns null on success, else the failure.</summary>
    public Task<QueryFailure?> RunAsync(Caller caller, long sourceId, QueryRequest request, IRowSink sink, CancellationToken cancellationToken) =>
        RunAsync(caller, sourceId, found: null, request, sink, cancellationToken);

    /// <summary>
    /// The same, with the source already read by the caller in the caller's organization (the HTTP
    /// route reads it with its key check): <paramref name="found"/> holds the row, or none when there is no such source.
    /// </summary>
    public async Task<QueryFailure?> RunAsync(
        Caller caller, long sourceId, Found? found, QueryRequest request, IRowSink sink, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var type = "?";
        QueryRun? run = null;
        QueryFailure? failure;
        try
        {
            (failure, run, type) = await ExecuteAsync(caller, sourceId, found, request, sink, clock, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            failure = new QueryFailure(QueryFailureKind.Aborted, QueryCodes.Aborted, "The client went away.");
        }

        var outcome = failure is null ? (run!.Truncated ? "truncated" : "succeeded") : failure.Kind.ToString().ToLowerInvariant();
        QueryAudit.QueryRan(_audit, outcome, sourceId, type, caller.OrganizationId, caller.KeyId, run?.RowCount ?? 0, run?.Truncated ?? false,
            (long)clock.Elapsed.TotalMilliseconds, failure?.Status ?? StatusCodes.Status200OK, failure?.Code ?? "ok", request.Sql.Length, request.Uid is not null);
        return failure;
    }

    private async Task<(QueryFailure? Failure, QueryRun? Run, string Type)> ExecuteAsync(
        Caller caller, long sourceId, Found? found, QueryRequest request, IRowSink sink, Stopwatch clock, CancellationToken cancellationToken)
    {
        var row = found is not null ? found.Source : await sources.FindStoredAsync(caller, sourceId, cancellationToken);
        if (row is null)
        {
            pools.Retire(sourceId, caller.OrganizationId);
            prepared.Forget(sourceId);
            return (new QueryFailure(QueryFailureKind.NotFound, "not_found", "Not found."), null, "?");
        }

        var type = SourceTypes.Find(row.Type)!;
        if (EngineFor(type) is not { } engine)
        {
            return (Invalid(Hosting.ValidationErrors.NonField, QueryCodes.Unsupported,
                type.QueryUnsupported ?? $"Caravan cannot run queries on {type.Name} sources yet."), null, row.Type);
        }

        var (count, statement) = SqlText.Split(request.Sql, engine.Statements.Dialect);
        if (count == 0)
        {
            return (Invalid("sql", QueryCodes.SyntaxError, "The text holds no statement, only comments."), null, row.Type);
        }

        if (count > 1)
        {
            return (Invalid("sql", QueryCodes.MultipleStatements, "Send one statement per query; this text holds more than one."), null, row.Type);
        }

        if (engine.Statements.Refusal(statement) is { } refusal)
        {
            return (QueryFailure.ReadOnly(refusal), null, row.Type);
        }

        if (caller.Token is { } token)
        {
            // A token speaks for one end user: its uid is the one the database sees (contract section 9.1).
            // Where the database takes no uid, the token's queries run with the source's own rights.
            if (request.Uid is not null && request.Uid != token.Uid)
            {
                return (Invalid("uid", "invalid", "This token is for another uid: leave uid out (the token's uid is used) or send the token's."), null, row.Type);
            }

            request = engine.UidUnsupported is null ? request with { Uid = token.Uid } : request;
        }

        if (request.Uid is not null && engine.UidUnsupported is { } why)
        {
            return (Invalid("uid", QueryCodes.Unsupported, why), null, row.Type);
        }

        if (!row.IsFullyConfigured && !type.ServesWhileIncomplete)
        {
            return (new QueryFailure(QueryFailureKind.NotConfigured, QueryCodes.NotConfigured, NotConfiguredMessage), null, row.Type);
        }

        using var slot = await concurrency.EnterAsync(sourceId, cancellationToken);
        if (slot is null)
        {
            return (new QueryFailure(QueryFailureKind.Busy, QueryCodes.SourceBusy,
                $"{options.Value.MaxConcurrentPerSource} queries are already running on this source; try again shortly."), null, row.Type);
        }

        var (_, connection, scrubber) = prepared.For(row);
        if (NetworkPathFields.Unhonoured(connection, engine.AppliedGroups) is { } unhonoured)
        {
            return (new QueryFailure(QueryFailureKind.Unreachable, unhonoured.Code, unhonoured.Message), null, row.Type);
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(request.Timeout - clock.Elapsed + Backstop);
        var run = new QueryRun(connection, sourceId, caller.OrganizationId, row.Version, statement, request, options.Value, sink, memory, scrubber, limit.Token);
        try
        {
            await engine.RunAsync(run);
            if (!run.Begun)
            {
                await run.BeginAsync([]);
            }

            await sink.EndAsync(new QuerySummary(run.RowCount, run.TruncatedBy, (long)clock.Elapsed.TotalMilliseconds), cancellationToken);
            return (null, run, row.Type);
        }
        catch (QueryException known)
        {
            return (known.Failure, run, row.Type);
        }
        catch (ConnectivityException unreachable)
        {
            return (new QueryFailure(QueryFailureKind.Unreachable, unreachable.Code, run.Scrub(unreachable.Message)), run, row.Type);
        }
        catch (Exception exception) when (exception is OperationCanceledException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            return (new QueryFailure(QueryFailureKind.Timeout, QueryCodes.Timeout,
                $"The statement did not finish within {request.TimeoutMs} ms and was cancelled."), run, row.Type);
        }
        catch (Exception exception) when (exception is not OperationCanceledException && !cancellationToken.IsCancellationRequested
            && exception is not (OutOfMemoryException or InvalidProgramException))
        {
            _logger.LogWarning("A query on a {Type} source failed with {Exception}", row.Type, exception.GetType().Name);
            return (new QueryFailure(QueryFailureKind.Unreachable, FailureCodes.DriverError, run.Scrub(exception.Message)), run, row.Type);
        }
        finally
        {
            // Whatever the result still held of the replica's budget, however the query ended.
            run.Release();
        }
    }

    /// <summary>A source read ahead of the gateway; <see cref="Source"/> is null when it does not exist.</summary>
    public sealed record Found(StoredSource? Source);

    private static QueryFailure Invalid(string field, string code, string message) => new(QueryFailureKind.Invalid, code, message, field);
}
