using Caravan.Api.Connectivity;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>
/// The staged test run on its own: whatever its steps do (succeed, fail, name another step, get
/// cancelled by their limit, the deadline or something else), a report that is not ok names
/// exactly one failed step, with a code and a message.
/// </summary>
public sealed class TestRunTests
{
    private static readonly string[] Plan = Reports.Steps;

    private enum Outcome
    {
        Ok,
        Fails,
        FailsNamingAnEarlierStep,
        FailsNamingALaterStep,
        FailsNamingAnUnplannedStep,
        CancelledForItsOwnReason,
        TimesOutByItself,
        RunsOutOfItsLimit,
        RunsOutOfTheDeadline,
        Throws,
        SkippedWithAReason,
        SucceedsWithoutWork,
    }

    [Fact]
    public async Task A_step_cancelled_for_its_own_reason_is_a_failed_timeout_step()
    {
        using var run = NewRun(TimeSpan.FromSeconds(30));
        run.Plan(Plan);

        var result = await run.StepAsync<int>("authenticate", _ => throw new OperationCanceledException());

        Assert.Equal(0, result);
        Reports.AssertFailedAt(Reports.Of(run.Report()), "authenticate", FailureCodes.Timeout);
    }

    [Fact]
    public async Task A_failure_naming_a_step_already_reported_is_the_failure_of_the_running_step()
    {
        // The MongoDB proxy's egress refusal of a second host, met while authenticating, after the seed passed egress.
        using var run = NewRun(TimeSpan.FromSeconds(30));
        run.Plan(Plan);
        await run.StepAsync("egress", _ => Task.FromResult(1));

        await run.StepAsync("authenticate", _ => Task.FromException(
            new ConnectivityException(FailureCodes.EgressDenied, "not allowed by the egress policy", step: "egress")));

        var report = run.Report();
        Reports.AssertFailedAt(Reports.Of(report), "authenticate", FailureCodes.EgressDenied);
        Assert.Equal(TestRun.Ok, report.Steps.Single(s => s.Name == "egress").Status);
    }

    [Fact]
    public async Task A_step_still_running_at_the_deadline_is_a_failed_timeout_step()
    {
        using var run = NewRun(TimeSpan.FromMilliseconds(50));
        run.Plan(Plan);

        await run.StepAsync("query", token => Task.Delay(Timeout.Infinite, token));

        Reports.AssertFailedAt(Reports.Of(run.Report()), "query", FailureCodes.Timeout);
    }

    [Fact]
    public async Task Whatever_the_steps_do_a_report_that_is_not_ok_has_exactly_one_failed_step()
    {
        var outcomes = Enum.GetValues<Outcome>();
        for (var seed = 0; seed < 200; seed++)
        {
            // A short deadline, so that a step that waits for it ends soon; the quick steps finish well within it.
            var random = new Random(seed);
            using var run = NewRun(TimeSpan.FromMilliseconds(50));
            run.Plan(Plan);
            var script = new List<string>();
            foreach (var name in Plan)
            {
                var outcome = outcomes[random.Next(outcomes.Length)];
                script.Add($"{name}:{outcome}");
                await PlayAsync(run, name, outcome, random);
            }

            var report = run.Report();
            var failed = report.Steps.Where(s => s.Status == TestRun.Failed).ToList();
            var context = $"seed {seed}: {string.Join(' ', script)} -> {string.Join(' ', report.Steps.Select(s => $"{s.Name}:{s.Status}:{s.Code}"))}";
            if (report.Ok)
            {
                Assert.True(failed.Count == 0, context);
            }
            else
            {
                var only = Assert.Single(failed);
                Assert.False(string.IsNullOrEmpty(only.Code), context);
                Assert.False(string.IsNullOrEmpty(only.Message), context);
            }

            Assert.True(report.Steps.Select(s => s.Name).Distinct().Count() == report.Steps.Count, "a step is reported twice: " + context);
        }
    }

    private static Task PlayAsync(TestRun run, string name, Outcome outcome, Random random)
    {
        var earlier = Plan[..Array.IndexOf(Plan, name)];
        var later = Plan[(Array.IndexOf(Plan, name) + 1)..];
        switch (outcome)
        {
            case Outcome.SkippedWithAReason:
                run.Skip(name, "does not apply");
                return Task.CompletedTask;
            case Outcome.SucceedsWithoutWork:
                if (!run.HasFailed)
                {
                    run.Succeed(name, "came with another step");
                }

                return Task.CompletedTask;
            case Outcome.RunsOutOfItsLimit:
                return run.StepAsync(name, token => Task.Delay(Timeout.Infinite, token), TimeSpan.FromMilliseconds(5));
            case Outcome.RunsOutOfTheDeadline:
                return run.StepAsync(name, token => Task.Delay(Timeout.Infinite, token));
            default:
                return run.StepAsync(name, _ => outcome switch
                {
                    Outcome.Fails => Task.FromException(new ConnectivityException(FailureCodes.PortClosed, "closed")),
                    Outcome.FailsNamingAnEarlierStep when earlier.Length > 0 => Task.FromException(
                        new ConnectivityException(FailureCodes.EgressDenied, "refused", step: earlier[random.Next(earlier.Length)])),
                    Outcome.FailsNamingALaterStep when later.Length > 0 => Task.FromException(
                        new ConnectivityException(FailureCodes.TlsFailed, "handshake", step: later[random.Next(later.Length)])),
                    Outcome.FailsNamingAnUnplannedStep => Task.FromException(new ConnectivityException(FailureCodes.DriverError, "odd", step: "extra")),
                    Outcome.CancelledForItsOwnReason => Task.FromException(new TaskCanceledException("the driver's own timer")),
                    Outcome.TimesOutByItself => Task.FromException(new TimeoutException("the driver's own timeout")),
                    Outcome.Throws => Task.FromException(new InvalidOperationException("a driver bug")),
                    _ => Task.CompletedTask,
                });
        }
    }

    private static TestRun NewRun(TimeSpan deadline) => new(new SecretScrubber([]), deadline, CancellationToken.None);
}
