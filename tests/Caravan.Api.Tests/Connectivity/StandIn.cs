using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>One request as the stand-in received it.</summary>
public sealed record Recorded(string Method, string Path, string Query, IReadOnlyDictionary<string, string> Headers, string Body)
{
    public JsonObject Json => JsonNode.Parse(Body)!.AsObject();

    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;

    /// <summary>The form fields of an application/x-www-form-urlencoded body.</summary>
    public Dictionary<string, string> Form() => Body.Split('&', StringSplitOptions.RemoveEmptyEntries)
        .Select(p => p.Split('=', 2))
        .ToDictionary(p => Uri.UnescapeDataString(p[0].Replace('+', ' ')), p => Uri.UnescapeDataString(p.Length > 1 ? p[1].Replace('+', ' ') : string.Empty));
}

/// <summary>What the stand-in answers; null from a handler means it never answers.</summary>
public sealed record Reply(int Status, string Body, string ContentType = "application/json")
{
    public static Reply Json(int status, string json) => new(status, json);

    public static Reply Json(string json) => new(200, json);
}

/// <summary>
/// A local stand-in for a REST service (Snowflake, BigQuery, Databricks): Kestrel on a loopback
/// port, every request recorded, answered by the test's handler.
/// </summary>
public sealed class StandIn : IAsyncDisposable
{
    private readonly ConcurrentQueue<Recorded> _requests = new();
    private readonly CancellationTokenSource _stopping = new();
    private WebApplication? _app;

    private StandIn(Func<Recorded, Reply?> handler) => Handler = handler;

    public Func<Recorded, Reply?> Handler { get; set; }

    public string Url { get; private set; } = string.Empty;

    public IReadOnlyList<Recorded> Requests => [.. _requests];

    /// <summary>Starts a stand-in on plain http, or on https with <paramref name="certificate"/>.</summary>
    public static async Task<StandIn> StartAsync(Func<Recorded, Reply?> handler, X509Certificate2? certificate = null)
    {
        var standIn = new StandIn(handler);
        (standIn._app, standIn.Url) = await StartKestrelAsync(standIn.AnswerAsync, certificate);
        return standIn;
    }

    /// <summary>Kestrel on a loopback port serving every request with <paramref name="serve"/>, and its base URL (no trailing slash).</summary>
    public static async Task<(WebApplication App, string Url)> StartKestrelAsync(RequestDelegate serve, X509Certificate2? certificate = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory, EnvironmentName = "StandIn" });
        if (certificate is null)
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
        }
        else
        {
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(certificate)));
        }

        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(1));
        var app = builder.Build();
        app.Run(serve);
        await app.StartAsync();
        return (app, app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/'));
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        _stopping.Dispose();
    }

    private async Task AnswerAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync(context.RequestAborted);
        var headers = context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        var recorded = new Recorded(context.Request.Method, context.Request.Path.Value ?? string.Empty, context.Request.QueryString.Value ?? string.Empty, headers, body);
        _requests.Enqueue(recorded);
        var reply = Handler(recorded);
        if (reply is null)
        {
            using var both = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
            try
            {
                await Task.Delay(Timeout.Infinite, both.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        context.Response.StatusCode = reply!.Status;
        context.Response.ContentType = reply.ContentType;
        await context.Response.WriteAsync(reply.Body, context.RequestAborted);
    }
}

/// <summary>A stand-in and a Caravan of the test's own whose endpoint for one type points at it.</summary>
public sealed class Rig : IAsyncDisposable
{
    private Rig(StandIn standIn, OwnCaravan app, OrgClient org)
    {
        StandIn = standIn;
        App = app;
        Org = org;
    }

    public StandIn StandIn { get; }

    public OwnCaravan App { get; }

    public OrgClient Org { get; }

    public HttpClient Http => Org.Http;

    public static async Task<Rig> StartAsync(
        string type, Func<Recorded, Reply?> handler, int? testTimeoutSeconds = null, X509Certificate2? certificate = null,
        IReadOnlyDictionary<string, string?>? more = null)
    {
        var standIn = await StandIn.StartAsync(handler, certificate);
        var settings = new Dictionary<string, string?>(more ?? new Dictionary<string, string?>()) { [$"Caravan:Connectivity:Endpoints:{type}"] = standIn.Url };
        if (testTimeoutSeconds is { } seconds)
        {
            settings["Caravan:Connectivity:TestTimeoutSeconds"] = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        var app = new OwnCaravan(settings);
        var org = await app.NewOrganizationAsync();
        return new Rig(standIn, app, org);
    }

    /// <summary>
    /// Against a service of <paramref name="type"/> that never answers, with a 2 s deadline, a stored
    /// <paramref name="source"/>'s test fails at authenticate with timeout and its discovery answers
    /// timeout, each after 1 to 6 s. Returns the report.
    /// </summary>
    public static async Task<JsonNode> AssertNeverAnsweringTimesOutAsync(string type, string source)
    {
        await using var rig = await StartAsync(type, _ => null, testTimeoutSeconds: 2);
        var id = await rig.Http.CreateSourceAsync(source);

        var clock = Stopwatch.StartNew();
        var report = await rig.Http.PostJsonAsync($"/api/v1/sources/{id}/test/", "{}").Expect(HttpStatusCode.OK);
        var testTook = clock.Elapsed;
        clock.Restart();
        var discovery = await rig.Http.GetAsync(new Uri($"/api/v1/sources/{id}/schemas/", UriKind.Relative)).Expect(HttpStatusCode.BadGateway);

        Assert.Equal("timeout", Reports.Code(report, "authenticate"));
        Assert.InRange(testTook, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(6));
        Assert.Equal("timeout", discovery["code"]!.GetValue<string>());
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(6));
        return report;
    }

    public async ValueTask DisposeAsync()
    {
        await App.DisposeAsync();
        await StandIn.DisposeAsync();
    }
}

/// <summary>A decoded JWT, for checking claims and the RS256 signature.</summary>
public sealed record Jwt(JsonObject Header, JsonObject Claims, byte[] SignedPart, byte[] Signature)
{
    public static Jwt Decode(string token)
    {
        var parts = token.Split('.');
        Assert.Equal(3, parts.Length);
        return new Jwt(
            JsonNode.Parse(Base64Url(parts[0]))!.AsObject(),
            JsonNode.Parse(Base64Url(parts[1]))!.AsObject(),
            Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]),
            Base64Url(parts[2]));
    }

    public bool VerifiesWith(RSA publicKey) =>
        publicKey.VerifyData(SignedPart, Signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);

    public string Claim(string name) => Claims[name]!.GetValue<string>();

    public long Time(string name) => Claims[name]!.GetValue<long>();

    private static byte[] Base64Url(string text)
    {
        var base64 = text.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '='));
    }
}
