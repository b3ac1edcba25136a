using System.Diagnostics;
using System.Text.Json.Serialization;

namespace Caravan.Api.Connectivity;

public sealed record TestStep(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("duration_ms")] long DurationMs,
    [property: JsonPropertyName("code")] string? Code,
    [property: JsonPropertyName("message")] string? Message);

public sealed record TestReport(
    [property: JsonPropertyName("ok")] bool Ok,
    [property: JsonPropertyName("duration_ms")] long DurationMs,
    [property: JsonPropertyName("steps")] IReadOnlyList<TestStep> Steps);

/// <summary>
/// One connection test: runs named steps in order under an overall deadline, each with its own
/// time limit; after a failure the remaining steps are recorded as skipped. Every message that
/// leaves is scrubbed of the source's secret values, whatever a driver put in it, and only then
/// shortened to <see cref="MessageLimit"/>.
/// </summary>
public sealed class TestRun : IDisposable
{
    public const string Ok = "ok";
    public const string Failed = "failed";
    public const string Skipped = "skipped";

    /// <summary>
    /// The longest message of a step or of a failed discovery: room for a server's own words and
    /// the advice around them. Drivers do not shorten what a server said; this cut, made after
    /// masking, is the only one.
    /// </summary>
    public const int MessageLimit = 500;

    private readonly List<TestStep> _steps = [];
    private readonly List<string> _plan = [];
    private readonly Dictionary<string, string> _skipReasons = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly CancellationTokenSource _deadline;
    private readonly SecretScrubber _scrubber;

    public TestRun(SecretScrubber scrubber, TimeSpan deadline, CancellationToken aborted)
    {
        _scrubber = scrubber;
        _deadline = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        _deadline.CancelAfter(deadline);
        Deadline = deadline;
    }

    public TimeSpan Deadline { get; }

    /// <summary>Cancelled when the overall deadline passes or the client goes away.</summary>
    public CancellationToken Token => _deadline.Token;

    public bool HasFailed { get; private set; }

    /// <summary>Told of the plan and of every step as it finishes (the streaming mode of the test routes).</summary>
    public ITestObserver? Observer { get; init; }

    public TimeSpan Remaining => Deadline - _clock.Elapsed;

    /// <summary>
    /// Runs one step. Returns its result, or default when it failed or was skipped (an earlier
    /// step failed). <paramref name="limit"/> bounds this step; the overall deadline always applies.
    /// </summary>
    public Task<T?> StepAsync<T>(string name, Func<CancellationToken, Task<T>> work, TimeSpan? limit = null) =>
        StepAsync(name, work, describe: null, limit);

    /// <summary>
    /// The same, with <paramref name="describe"/> saying what the step found when it succeeds (a
    /// server's name and version), scrubbed and shortened like a failure's message.
    /// </summary>
    public async Task<T?> StepAsync<T>(string name, Func<CancellationToken, Task<T>> work, Func<T, string>? describe, TimeSpan? limit = null)
    {
        if (HasFailed)
        {
            if (!_plan.Contains(name))
            {
                Skip(name);
            }

            return default;
        }

        var started = _clock.Elapsed;
        using var step = CancellationTokenSource.CreateLinkedTokenSource(_deadline.Token);
        var budget = limit is { } l && l < Remaining ? l : Remaining;
        step.CancelAfter(budget > TimeSpan.Zero ? budget : TimeSpan.FromMilliseconds(1));
        try
        {
            var result = await work(step.Token);
            Record(name, Ok, started, null, describe?.Invoke(result));
            return result;
        }
        catch (ConnectivityException failure)
        {
            // A failure may name an earlier step (the MongoDB proxy's egress refusal of a host the
            // driver found by itself); once that step is in the report, the failure is this step's.
            var at = failure.Step is { } earlier && !_steps.Any(s => s.Name == earlier) ? earlier : name;
            Record(at, Failed, started, failure.Code, failure.Message);
        }
        catch (Exception exception) when (exception is OperationCanceledException or TimeoutException)
        {
            // Whatever cancelled it (this step's limit, the overall deadline, the client going away, a
            // driver's own timer), the step failed: a failed test always names the step it failed at.
            Record(name, Failed, started, FailureCodes.Timeout, step.IsCancellationRequested || exception is TimeoutException
                ? $"No answer within {Math.Max(1, (int)Math.Round(budget.TotalSeconds))} s. Check that the host and port are right and that a firewall lets Caravan through."
                : "No answer in time: the driver gave up waiting. Check that the host and port are right and that a firewall lets Caravan through.");
        }
        catch (Exception exception)
        {
            Record(name, Failed, started, FailureCodes.DriverError, Describe(exception));
        }

        HasFailed = true;
        return default;
    }

    public Task StepAsync(string name, Func<CancellationToken, Task> work, TimeSpan? limit = null) =>
        StepAsync<bool>(name, async token => { await work(token); return true; }, limit);

    /// <summary>
    /// Declares the steps of this test in report order. A planned step that never runs (an
    /// earlier one failed, or it does not apply) is reported as skipped.
    /// </summary>
    public void Plan(IEnumerable<string> names)
    {
        _plan.AddRange(names);
        Observer?.Planned(_plan);
    }

    /// <summary>Records <paramref name="name"/> as failed with <paramref name="failure"/>, a problem found before any work (the source is not configured for it).</summary>
    public Task FailAsync(string name, ConnectivityException failure) => StepAsync(name, _ => Task.FromException(failure));

    /// <summary>Records a step that does not apply to this source, with the reason.</summary>
    public void Skip(string name, string? reason = null)
    {
        if (reason is not null)
        {
            _skipReasons[name] = reason;
        }

        if (!_plan.Contains(name))
        {
            var skipped = new TestStep(name, Skipped, 0, null, reason);
            _steps.Add(skipped);
            Observer?.Finished(skipped);
        }
    }

    /// <summary>Records a step that succeeded without work of its own (its outcome came with another).</summary>
    public void Succeed(string name, string? message = null) => Record(name, Ok, _clock.Elapsed, null, message);

    public TestReport Report()
    {
        var steps = new List<TestStep>();
        foreach (var name in _plan)
        {
            steps.Add(_steps.FirstOrDefault(s => s.Name == name) ?? new TestStep(name, Skipped, 0, null, _skipReasons.GetValueOrDefault(name)));
        }

        steps.AddRange(_steps.Where(s => !_plan.Contains(s.Name)));
        return new TestReport(!HasFailed, (long)_clock.Elapsed.TotalMilliseconds, steps);
    }

    public void Dispose() => _deadline.Dispose();

    private void Record(string name, string status, TimeSpan started, string? code, string? message)
    {
        if (status == Failed)
        {
            HasFailed = true;
        }

        var step = new TestStep(name, status, (long)(_clock.Elapsed - started).TotalMilliseconds, code,
            message is null ? null : _scrubber.Scrub(message, MessageLimit));
        _steps.Add(step);
        Observer?.Finished(step);
    }

    /// <summary>What an unexpected exception says; <see cref="Record"/> scrubs and shortens it.</summary>
    private static string Describe(Exception exception) =>
        exception.InnerException is { } inner && exception.Message.Length < 20 ? inner.Message : exception.Message;
}
