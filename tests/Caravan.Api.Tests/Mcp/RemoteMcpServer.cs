using System.Collections.Concurrent;
using System.ComponentModel;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Server;

namespace Caravan.Api.Tests.Mcp;

/// <summary>
/// A real MCP server (ModelContextProtocol.AspNetCore) on a loopback port standing in for an
/// organization's remote tool server: it requires <c>Authorization: Bearer</c> with the token it
/// was given (401 otherwise), records every authorization it saw and every tool call that reached
/// it, and offers three tools — <c>echo</c> and <c>add</c> (read-only) and <c>wipe</c> — plus
/// <c>hang</c> (never answers) and <c>huge</c> (answers 50 MB) for the limits. Served either over
/// Streamable HTTP at <c>/mcp</c>, or only over SSE at <c>/sse</c> (a POST there is refused).
/// </summary>
public sealed class RemoteMcpServer : IAsyncDisposable
{
    public const string ServerName = "remote-test-server";
    public const string ServerVersion = "3.1.4";

    private WebApplication? _app;

    private RemoteMcpServer(string token, bool sseOnly, bool withLimits)
    {
        Token = token;
        SseOnly = sseOnly;
        WithLimits = withLimits;
    }

    /// <summary>Whether <c>hang</c> and <c>huge</c> are offered besides the three tools.</summary>
    public bool WithLimits { get; }

    /// <summary>The token the server accepts now; a test may change it (a rotated credential).</summary>
    public string Token { get; set; }

    public bool SseOnly { get; }

    /// <summary>The <c>base_url</c> to register.</summary>
    public string BaseUrl { get; private set; } = string.Empty;

    /// <summary>Every Authorization header that reached the server (empty when none was sent).</summary>
    public ConcurrentQueue<string> Authorizations { get; } = new();

    /// <summary>The tools called, by name, in the order they ran.</summary>
    public ConcurrentQueue<string> Calls { get; } = new();

    private int _refusedStreamablePosts;
    private int _sessions;

    /// <summary>How many sessions clients opened: SSE streams, or Streamable HTTP initializations (the first message of a session).</summary>
    public int Sessions => Volatile.Read(ref _sessions);

    /// <summary>POSTs to the SSE endpoint of an SSE-only server (a client trying Streamable HTTP first), each refused.</summary>
    public int RefusedStreamablePosts => Volatile.Read(ref _refusedStreamablePosts);

    public static async Task<RemoteMcpServer> StartAsync(string token, bool sseOnly = false, bool withLimits = false)
    {
        var server = new RemoteMcpServer(token, sseOnly, withLimits);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory, EnvironmentName = "RemoteMcp" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(1));
        builder.Services.AddMcpServer(options => options.ServerInfo = new() { Name = ServerName, Version = ServerVersion })
            .WithHttpTransport(transport =>
            {
                transport.Stateless = !sseOnly;
#pragma warning disable MCP9004 // An SSE-only server is what this stands in for.
                transport.EnableLegacySse = sseOnly;
#pragma warning restore MCP9004
            })
            .WithTools(server.Tools());
        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            var authorization = context.Request.Headers.Authorization.ToString();
            server.Authorizations.Enqueue(authorization);
            if (authorization != "Bearer " + server.Token)
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                return;
            }

            if (sseOnly && HttpMethods.IsPost(context.Request.Method) && context.Request.Path == "/sse")
            {
                Interlocked.Increment(ref server._refusedStreamablePosts);
                context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
                return;
            }

            if (HttpMethods.IsGet(context.Request.Method) && context.Request.Path == "/sse")
            {
                Interlocked.Increment(ref server._sessions);
            }
            else if (HttpMethods.IsPost(context.Request.Method))
            {
                context.Request.EnableBuffering();
                using var reader = new StreamReader(context.Request.Body, leaveOpen: true);
                var body = await reader.ReadToEndAsync(context.RequestAborted);
                context.Request.Body.Position = 0;
                if (!sseOnly && (body.Contains("\"method\":\"initialize\"", StringComparison.Ordinal) || body.Contains("\"method\":\"server/discover\"", StringComparison.Ordinal)))
                {
                    Interlocked.Increment(ref server._sessions);
                }
            }

            await next(context);
        });
        app.MapMcp(sseOnly ? "/" : "/mcp");
        await app.StartAsync();
        var root = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        server._app = app;
        server.BaseUrl = root + (sseOnly ? "/sse" : "/mcp");
        return server;
    }

    private IEnumerable<McpServerTool> Tools() => WithLimits ? [.. ThreeTools(), .. LimitTools()] : ThreeTools();

    private IEnumerable<McpServerTool> ThreeTools() =>
    [
        McpServerTool.Create(
            [Description("Repeats the text it is given.")] (string text) => Called("echo", "echo: " + text),
            new McpServerToolCreateOptions { Name = "echo", Description = "Repeats the text it is given.", ReadOnly = true }),
        McpServerTool.Create(
            (int a, int b) => Called("add", (a + b).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new McpServerToolCreateOptions { Name = "add", Description = "Adds two integers.", ReadOnly = true }),
        McpServerTool.Create(
            () => Called("wipe", "wiped"),
            new McpServerToolCreateOptions { Name = "wipe", Description = "Deletes everything.", ReadOnly = false, Destructive = true }),
    ];

    private IEnumerable<McpServerTool> LimitTools() =>
    [
        McpServerTool.Create(
            async (CancellationToken cancellationToken) =>
            {
                Called("hang", string.Empty);
                await Task.Delay(Timeout.Infinite, cancellationToken);
                return "never";
            },
            new McpServerToolCreateOptions { Name = "hang", Description = "Never answers.", ReadOnly = true }),
        McpServerTool.Create(
            () => Called("huge", new string('x', 50 * 1024 * 1024)),
            new McpServerToolCreateOptions { Name = "huge", Description = "Answers 50 MB.", ReadOnly = true }),
    ];

    private string Called(string tool, string answer)
    {
        Calls.Enqueue(tool);
        return answer;
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
