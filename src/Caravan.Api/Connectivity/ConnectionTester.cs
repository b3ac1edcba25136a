using Caravan.Api.Connectors;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Connectivity;

/// <summary>Runs connection tests and discovery with the driver of a source's type, within the deadline.</summary>
public sealed class ConnectionTester(IEnumerable<IDriver> drivers, IOptions<ConnectivityOptions> options, ILogger<ConnectionTester> logger)
{
    private readonly Dictionary<SourceType, IDriver> _drivers = drivers
        .SelectMany(d => d.Types.Select(t => (Type: t, Driver: d)))
        .ToDictionary(p => p.Type, p => p.Driver);

    /// <summary>Whether Caravan can test and discover sources of <paramref name="type"/>.</summary>
    public bool Serves(SourceType type) => _drivers.ContainsKey(type);

    public TimeSpan Deadline => TimeSpan.FromSeconds(Math.Clamp(options.Value.TestTimeoutSeconds, 1, 60));

    public async Task<TestReport> TestAsync(SourceConnection connection, CancellationToken cancellationToken, ITestObserver? observer = null)
    {
        using var run = new TestRun(connection.Scrubber, Deadline, cancellationToken) { Observer = observer };
        if (_drivers.TryGetValue(connection.Type, out var driver) && NetworkPathFields.Unhonoured(connection, driver.AppliedGroups) is { } unhonoured)
        {
            run.Plan(driver.Steps);
            await run.FailAsync(TestSteps.Connect, unhonoured);
        }
        else if (driver is not null)
        {
            run.Plan(SshTunnels.Holds(connection) ? SshTunnels.Plan(driver.Steps) : driver.Steps);
            await driver.TestAsync(run, connection);
        }
        else
        {
            await run.StepAsync("connect", _ => Task.FromException(new ConnectivityException(
                FailureCodes.DriverError, $"Caravan cannot test {connection.Type.DisplayName} sources yet.")));
        }

        var report = run.Report();
        var failed = report.Steps.FirstOrDefault(s => s.Status == TestRun.Failed);
        logger.LogInformation(
            "Connection test of a {Type} source: {Outcome} in {DurationMs} ms{FailedStep}",
            connection.Type.Name, report.Ok ? "ok" : "failed", report.DurationMs, failed is null ? string.Empty : $" at {failed.Name} ({failed.Code})");
        return report;
    }

    /// <summary>
    /// Lists schemas (or databases, datasets); throws <see cref="ConnectivityException"/> with a
    /// scrubbed message, shortened as a test step's is.
    /// </summary>
    public async Task<Discovery> DiscoverAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        var scrubber = connection.Scrubber;
        if (!_drivers.TryGetValue(connection.Type, out var driver))
        {
            throw new ConnectivityException(FailureCodes.DriverError, $"Caravan cannot discover {connection.Type.DisplayName} schemas yet.");
        }

        if (NetworkPathFields.Unhonoured(connection, driver.AppliedGroups) is { } unhonoured)
        {
            throw unhonoured;
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(Deadline);
        try
        {
            return await driver.DiscoverAsync(connection, deadline.Token)
                ?? new Discovery(connection.Type.SchemaKind, await driver.ListSchemasAsync(connection, deadline.Token));
        }
        catch (ConnectivityException failure)
        {
            throw new ConnectivityException(failure.Code, scrubber.Scrub(failure.Message, TestRun.MessageLimit));
        }
        catch (Exception exception) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested
            && exception is OperationCanceledException or TimeoutException)
        {
            throw new ConnectivityException(FailureCodes.Timeout, $"The database did not answer within {(int)Deadline.TotalSeconds} s.");
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            logger.LogWarning("Discovery of a {Type} source failed with {Exception}", connection.Type.Name, exception.GetType().Name);
            throw new ConnectivityException(FailureCodes.DriverError, scrubber.Scrub(exception.Message, TestRun.MessageLimit));
        }
    }
}
