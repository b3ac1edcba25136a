using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Caravan.Api.Auth;
using Caravan.Api.Connectivity;
using Caravan.Api.Data;
using Caravan.Api.Mcp;
using Caravan.Api.Hosting;
using Caravan.Api.Query;
using Caravan.Api.Sources;
using Caravan.Api.Tokens;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Caravan.Api.Connectors.Mcp;

/// <summary>
/// The tools of the organization's MCP sources at Caravan's own <c>/mcp</c> (contract 9.3): listed
/// beside Caravan's tools as <c>&lt;source id&gt;__&lt;tool&gt;</c> with the remote's description
/// and schemas, and forwarded with the stored token added by Caravan. Only the selected tools of
/// the caller's sources (a token's: its <c>srcs</c>) exist here; a tool that is not selected is
/// answered as unknown without any request to the remote. A read-scoped token sees and calls only
/// the tools the remote marks read-only. Calls count against <c>TestsPerMinute</c>, are cut at the
/// time and size limits, answer a failing remote as <c>isError: true</c>, and are audited.
/// Sessions are pooled per source and configuration version in <see cref="QueryPools"/>, so a
/// change of the source retires its session at once.
/// </summary>
internal sealed partial class RemoteTools(
    Database database,
    SourceConnections sources,
    PreparedSources prepared,
    QueryPools pools,
    McpConnector connector,
    RateLimits limits,
    TimeProvider time,
    IOptions<ConnectivityOptions> connectivity,
    ILoggerFactory loggers) : IToolSource
{
    /// <summary>Between the source id and the remote tool's name.</summary>
    public const string Separator = "__";

    /// <summary>The most MCP sources whose tools one <c>tools/list</c> offers, and how many are asked at once.</summary>
    public const int MaxSources = 200;

    private const int ListParallelism = 8;

    private readonly ILogger _audit = loggers.CreateLogger(QueryAudit.Category);
    private readonly ILogger _logger = loggers.CreateLogger<RemoteTools>();

    /// <summary>Splits <c>12__search</c> into the source id and the remote tool's name.</summary>
    public static bool TryParse(string name, out long sourceId, out string tool)
    {
        sourceId = 0;
        tool = string.Empty;
        var at = name.IndexOf(Separator, StringComparison.Ordinal);
        if (at <= 0 || at + Separator.Length == name.Length || name.AsSpan(0, at).ContainsAnyExceptInRange('0', '9')
            || !long.TryParse(name.AsSpan(0, at), NumberStyles.None, CultureInfo.InvariantCulture, out sourceId) || sourceId <= 0)
        {
            return false;
        }

        tool = name[(at + Separator.Length)..];
        return true;
    }

    public bool Claims(string toolName) => TryParse(toolName, out _, out _);

    public Task<CallToolResult> CallAsync(Caller caller, string toolName, IDictionary<string, JsonElement>? arguments, CancellationToken cancellationToken) =>
        TryParse(toolName, out var sourceId, out var tool)
            ? CallAsync(caller, toolName, sourceId, tool, arguments, cancellationToken)
            : throw new ArgumentException("Not a tool of an MCP source; ask Claims first.", nameof(toolName));

    /// <summary>The selected tools of the caller's MCP sources, renamed; a server that cannot be reached offers none (and is logged).</summary>
    public async Task<IReadOnlyList<Tool>> ListAsync(Caller caller, CancellationToken cancellationToken)
    {
        var found = new List<(StoredSource Row, string Name)>();
        await using (var lease = await database.LeaseReadAsync(cancellationToken))
        {
            await using var reader = await lease.Command($"""
                SELECT s.account_name, {SourceRows.StoredColumns} FROM sources s
                WHERE s.organization_id = @org AND s.type = @type AND s.deleted_at IS NULL AND s.is_fully_configured = @ready{caller.SourceCondition(database, "s.id")}
                ORDER BY s.id LIMIT @limit
                """).With("@org", caller.OrganizationId).With("@type", McpDriver.Type.Name).With("@ready", true).With("@limit", MaxSources)
                .WithSources(caller, database).ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                found.Add((SourceRows.ReadStored(reader, 1), reader.GetString(0)));
            }
        }

        var offered = new List<Tool>[found.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, found.Count), new ParallelOptions { MaxDegreeOfParallelism = ListParallelism, CancellationToken = cancellationToken },
            async (index, token) => offered[index] = await OfferedAsync(caller, found[index].Row, found[index].Name, token));
        return [.. offered.SelectMany(tools => tools)];
    }

    private async Task<List<Tool>> OfferedAsync(Caller caller, StoredSource row, string name, CancellationToken cancellationToken)
    {
        var sourceId = row.Id;
        var (_, connection, _) = prepared.For(row);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(Math.Clamp(connectivity.Value.TestTimeoutSeconds, 1, 60)));
        try
        {
            using var lease = Lease(row, connection);
            var tools = await lease.Pool.ToolsAsync(connection, limit.Token);
            var selection = Selection(connection);
            return [.. tools
                .Where(t => (selection.Count == 0 || selection.Contains(t.Name)) && ReadableBy(caller, t))
                .Select(t => new Tool
                {
                    Name = sourceId.ToString(CultureInfo.InvariantCulture) + Separator + t.Name,
                    Title = t.Title,
                    Description = (string.IsNullOrWhiteSpace(t.Description) ? string.Empty : t.Description.TrimEnd() + "\n\n")
                        + string.Create(CultureInfo.InvariantCulture, $"(Tool \"{t.Name}\" of the MCP server of source {sourceId}, \"{name}\", forwarded by Caravan.)"),
                    InputSchema = t.InputSchema,
                    OutputSchema = t.OutputSchema,
                    Annotations = t.Annotations,
                })];
        }
        catch (Exception exception) when (exception is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            _logger.LogWarning("The tools of MCP source {SourceId} could not be listed ({Exception}); its tools are left out of tools/list", sourceId, exception.GetType().Name);
            return [];
        }
    }

    /// <summary>Forwards one call; every outcome is a result (never an exception) and is audited.</summary>
    public async Task<CallToolResult> CallAsync(
        Caller caller, string name, long sourceId, string tool, IDictionary<string, JsonElement>? arguments, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        CallToolResult result;
        string code;
        long bytes;
        try
        {
            (result, code, bytes) = await ForwardAsync(caller, name, sourceId, tool, arguments, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The agent went away: the call was cancelled on the server too, and is audited as such.
            RemoteToolCalled(_audit, tool, "aborted", sourceId, caller.OrganizationId, caller.KeyId, (long)clock.Elapsed.TotalMilliseconds, 0, "aborted");
            throw;
        }

        var outcome = code == "ok" ? "succeeded" : code is "not_found" or "forbidden" or "throttled" ? "refused" : "failed";
        RemoteToolCalled(_audit, tool, outcome, sourceId, caller.OrganizationId, caller.KeyId, (long)clock.Elapsed.TotalMilliseconds, bytes, code);
        return result;
    }

    private async Task<(CallToolResult Result, string Code, long Bytes)> ForwardAsync(
        Caller caller, string name, long sourceId, string tool, IDictionary<string, JsonElement>? arguments, CancellationToken cancellationToken)
    {
        if (!limits.TryAcquire(caller.KeyId, RateBucket.Tests, out var retryAfter))
        {
            var seconds = Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds));
            return (CaravanTools.Failure("throttled", string.Create(CultureInfo.InvariantCulture,
                $"Throttled: this API key has used its tool calls that reach a data source for now (a per-minute limit). Retry in {seconds} s; nothing was run.")), "throttled", 0);
        }

        var row = await sources.FindStoredAsync(caller, sourceId, cancellationToken);
        if (row is null)
        {
            // Gone (or never the caller's): nothing of it stays in memory here.
            pools.Retire(sourceId, caller.OrganizationId);
            prepared.Forget(sourceId);
            return (Unknown(name), "not_found", 0);
        }

        if (row.Type != McpDriver.Type.Name || !row.IsFullyConfigured)
        {
            return (Unknown(name), "not_found", 0);
        }

        var (_, connection, scrubber) = prepared.For(row);
        var selection = Selection(connection);
        if (selection.Count > 0 && !selection.Contains(tool))
        {
            return (Unknown(name), "not_found", 0);
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(connector.CallLimit);
        var lease = Lease(row, connection);
        RemoteSession? session = null;
        var seen = default(RemoteWatch.Counts);
        try
        {
            if (caller.Token is { } grant && !grant.Allows(TokenScope.Query)
                && (await lease.Pool.ToolsAsync(connection, limit.Token)).FirstOrDefault(t => t.Name == tool) is not { Annotations.ReadOnlyHint: true })
            {
                return (CaravanTools.Failure("forbidden", $"{TokenAuthentication.NotAllowed} {name} is not marked read-only by its server: it needs a token with scope \"query\" or an API key; nothing was run."), "forbidden", 0);
            }

            session = await lease.Pool.SessionAsync(connection, limit.Token);
            seen = session.Watch.Snapshot();
            var answer = await session.Client.CallToolAsync(new CallToolRequestParams { Name = tool, Arguments = arguments }, limit.Token);
            var (clean, bytes) = Clean(answer, connection.Secret("access_token"));
            return (clean, answer.IsError == true ? RemoteCodes.RemoteError : "ok", bytes);
        }
        catch (OperationCanceledException) when (limit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return (CaravanTools.Failure(FailureCodes.Timeout, string.Create(CultureInfo.InvariantCulture,
                $"The MCP server of source {sourceId} did not answer {name} within {(int)connector.CallLimit.TotalSeconds} s; the call was cancelled. Retry later, or ask for less.")), FailureCodes.Timeout, 0);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            var failure = session?.Explain(exception, seen) ?? exception as ConnectivityException ?? RestService.MapNetwork(exception, "The MCP server");
            if (session is { IsClosed: true } || failure.Code == FailureCodes.ResultTooLarge)
            {
                // The session is broken (or a stream was cut mid-message): the next call opens a new one.
                pools.Retire(sourceId, caller.OrganizationId);
            }

            var message = exception is McpProtocolException
                ? $"The MCP server of source {sourceId} answered {name} with an error: {exception.Message}"
                : $"The MCP server of source {sourceId} could not run {name} ({failure.Code}): {failure.Message}";
            return (CaravanTools.Failure(failure.Code == FailureCodes.DriverError && exception is McpProtocolException ? RemoteCodes.RemoteError : failure.Code,
                scrubber.Scrub(message, TestRun.MessageLimit)), failure.Code, 0);
        }
        finally
        {
            lease.Dispose();
        }
    }

    private QueryPools.Lease<RemoteSlot> Lease(StoredSource row, SourceConnection connection) =>
        pools.Acquire(row.Id, row.OrganizationId, "mcp:" + row.Version.ToString(CultureInfo.InvariantCulture),
            () => new RemoteSlot(connector, time, TimeSpan.FromSeconds(Math.Clamp(connector.Options.ToolListCacheSeconds, 0, 3600))));

    private static bool ReadableBy(Caller caller, Tool tool) =>
        caller.Token is not { } grant || grant.Allows(TokenScope.Query) || tool.Annotations?.ReadOnlyHint == true;

    private static List<string> Selection(SourceConnection connection) => [.. connection.Names("selected_tools")];

    /// <summary>
    /// The remote's result as the agent gets it: the stored token, should the remote echo it,
    /// replaced wherever it appears; and its size.
    /// </summary>
    private static (CallToolResult Result, long Bytes) Clean(CallToolResult answer, string? token)
    {
        var info = McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(CallToolResult));
        var json = JsonSerializer.Serialize(answer, info);
        var bytes = System.Text.Encoding.UTF8.GetByteCount(json);
        if (string.IsNullOrEmpty(token))
        {
            return (answer, bytes);
        }

        var encoded = JsonEncodedText.Encode(token).ToString();
        var redacted = json.Replace(encoded, "[redacted]", StringComparison.Ordinal);
        if (encoded != token)
        {
            redacted = redacted.Replace(token, "[redacted]", StringComparison.Ordinal);
        }

        // Read back only when the token was there: most results go out as the remote sent them.
        return (redacted == json ? answer : (CallToolResult)JsonSerializer.Deserialize(redacted, info)!, bytes);
    }

    private static CallToolResult Unknown(string name) =>
        CaravanTools.Failure("not_found", $"Unknown tool {name}: no tool of that name is offered to you here. Call tools/list for the tools you can use.");

    [LoggerMessage(EventId = 6002, EventName = "RemoteToolCalled", Level = LogLevel.Information,
        Message = "Remote tool {Tool} {Outcome} on source {SourceId} by organization {OrganizationId} key {KeyId}: {DurationMs} ms, {ResultBytes} result bytes, code {Code}")]
    private static partial void RemoteToolCalled(
        ILogger logger, string tool, string outcome, long sourceId, long organizationId, string keyId, long durationMs, long resultBytes, string code);

    /// <summary>
    /// The pooled session of one source version: opened on first use, opened again when the server
    /// ended it, with the tools it listed last.
    /// </summary>
    public sealed class RemoteSlot(McpConnector connector, TimeProvider time, TimeSpan toolsFor) : IAsyncDisposable
    {
        private readonly SemaphoreSlim _opening = new(1, 1);
        private RemoteSession? _session;
        private bool _disposed;

        public async Task<RemoteSession> SessionAsync(SourceConnection connection, CancellationToken cancellationToken)
        {
            if (_session is { IsClosed: false } open)
            {
                return open;
            }

            await _opening.WaitAsync(cancellationToken);
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_session is { IsClosed: false } current)
                {
                    return current;
                }

                if (_session is { } closed)
                {
                    await closed.DisposeAsync();
                }

                _session = await connector.OpenAsync(connection, cancellationToken);
                return _session;
            }
            finally
            {
                _opening.Release();
            }
        }

        public async Task<IReadOnlyList<Tool>> ToolsAsync(SourceConnection connection, CancellationToken cancellationToken)
        {
            var session = await SessionAsync(connection, cancellationToken);
            if (session.Listed is { } listed && time.GetElapsedTime(listed.At) < toolsFor)
            {
                return listed.Tools;
            }

            var tools = await session.ListToolsAsync(cancellationToken);
            session.Listed = (tools, time.GetTimestamp());
            return tools;
        }

        public async ValueTask DisposeAsync()
        {
            await _opening.WaitAsync();
            try
            {
                _disposed = true;
                if (_session is { } session)
                {
                    await session.DisposeAsync();
                }
            }
            finally
            {
                _opening.Release();
            }
        }
    }
}
