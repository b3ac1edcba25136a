using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Caravan.Api.Hosting;
using Microsoft.AspNetCore.Http.Features;

namespace Caravan.Api.Connectivity;

/// <summary>Hears a connection test's progress: its plan, and each step when it finishes.</summary>
public interface ITestObserver
{
    void Planned(IReadOnlyList<string> steps);

    void Finished(TestStep finished);
}

/// <summary>
/// One line of a streamed test (extension): <c>{"plan": [...]}</c> when the steps are known,
/// <c>{"step": {...}}</c> as each step finishes, and <c>{"report": {...}}</c> last, the same report
/// the route answers without streaming.
/// </summary>
public sealed record TestStreamLine(
    [property: JsonPropertyName("plan"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Plan,
    [property: JsonPropertyName("step"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] TestStep? Step,
    [property: JsonPropertyName("report"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] TestReport? Report);

/// <summary>
/// The streaming mode of <c>POST /sources/test/</c> and <c>POST /sources/{id}/test/</c>: with
/// <c>Accept: application/x-ndjson</c> the answer is 200 with one JSON line per event, each
/// flushed as it happens, so a client can show the steps while the test runs.
/// </summary>
public sealed class StreamedTest(Func<ITestObserver, CancellationToken, Task<TestReport>> run) : IResult
{
    public const string MediaType = "application/x-ndjson";

    public static bool IsWanted(HttpRequest request) =>
        request.GetTypedHeaders().Accept.Any(a => string.Equals(a.MediaType.Value, MediaType, StringComparison.OrdinalIgnoreCase));

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var cancellationToken = httpContext.RequestAborted;
        var channel = Channel.CreateUnbounded<TestStreamLine>(new UnboundedChannelOptions { SingleReader = true });
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = MediaType + "; charset=utf-8";
        response.Headers.CacheControl = "no-store";
        response.Headers["X-Accel-Buffering"] = "no";
        httpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.StartAsync(cancellationToken);

        var work = RunAsync();
        await foreach (var line in channel.Reader.ReadAllAsync(cancellationToken))
        {
            await JsonSerializer.SerializeAsync(response.Body, line, ApiJson.Context.TestStreamLine, cancellationToken);
            await response.Body.WriteAsync("\n"u8.ToArray(), cancellationToken);
            await response.Body.FlushAsync(cancellationToken);
        }

        await work;

        async Task RunAsync()
        {
            try
            {
                var report = await run(new ChannelObserver(channel.Writer), cancellationToken);
                channel.Writer.TryWrite(new TestStreamLine(null, null, report));
            }
            finally
            {
                channel.Writer.TryComplete();
            }
        }
    }

    private sealed class ChannelObserver(ChannelWriter<TestStreamLine> writer) : ITestObserver
    {
        public void Planned(IReadOnlyList<string> steps) => writer.TryWrite(new TestStreamLine([.. steps], null, null));

        public void Finished(TestStep finished) => writer.TryWrite(new TestStreamLine(null, finished, null));
    }
}
