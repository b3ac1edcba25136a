using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>What the driver tests share: unreachable endpoints and the checks of a test report.</summary>
public static class DriverTestKit
{
    public static readonly string[] Steps = ["resolve", "egress", "connect", "tls", "authenticate", "query", "schemas"];

    /// <summary>A loopback port that was just bound and released: nothing listens there.</summary>
    public static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>A short, unique lower-case name for a test's databases and users.</summary>
    public static string UniqueName() => "cv" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>Every step ran and succeeded, except tls, which may be skipped (with a reason) on an unencrypted server.</summary>
    public static void AssertPassed(JsonNode report)
    {
        Assert.True(report["ok"]!.GetValue<bool>(), report.ToJsonString());
        var steps = report["steps"]!.AsArray();
        Assert.Equal(Steps, steps.Select(s => s!["name"]!.GetValue<string>()));
        foreach (var step in steps)
        {
            var status = step!["status"]!.GetValue<string>();
            if (step["name"]!.GetValue<string>() == "tls" && status == "skipped")
            {
                Assert.False(string.IsNullOrEmpty(step["message"]?.GetValue<string>()), report.ToJsonString());
            }
            else
            {
                Assert.True(status == "ok", report.ToJsonString());
            }
        }
    }

    /// <summary>The report failed at <paramref name="step"/> with <paramref name="code"/>; earlier steps passed, later ones were skipped.</summary>
    public static void AssertFailedAt(JsonNode report, string step, string code)
    {
        Assert.False(report["ok"]!.GetValue<bool>(), report.ToJsonString());
        var steps = report["steps"]!.AsArray();
        Assert.Equal(Steps, steps.Select(s => s!["name"]!.GetValue<string>()));
        var failed = steps.Where(s => s!["status"]!.GetValue<string>() == "failed").ToList();
        var only = Assert.Single(failed);
        Assert.True(only!["name"]!.GetValue<string>() == step && only["code"]!.GetValue<string>() == code,
            $"Expected {step}/{code}: {report.ToJsonString()}");
        Assert.False(string.IsNullOrWhiteSpace(only["message"]?.GetValue<string>()));
        var index = Array.IndexOf(Steps, step);
        foreach (var later in steps.Skip(index + 1))
        {
            Assert.Equal("skipped", later!["status"]!.GetValue<string>());
        }
    }

    /// <summary>No secret value appears in a response body or anywhere in the app's logs.</summary>
    public static void AssertNoSecrets(CaravanApp app, IEnumerable<string> bodies, params string[] secrets)
    {
        var texts = bodies.ToList();
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(texts, text => text.Contains(secret, StringComparison.Ordinal));
            Assert.DoesNotContain(app.Logs.Lines, line => line.Contains(secret, StringComparison.Ordinal));
        }
    }
}

/// <summary>
/// A loopback listener that accepts connections and never says a word: a database host behind a
/// firewall that drops packets looks the same to a driver once the TCP connection is up. Given an
/// answer, it sends that instead, whatever the client said, and hangs up.
/// </summary>
public sealed class SilentListener : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<TcpClient> _accepted = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly byte[]? _answer;
    private readonly Task _accepting;

    public SilentListener(string? answer = null)
    {
        _answer = answer is null ? null : Encoding.ASCII.GetBytes(answer);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accepting;
        }
        catch (Exception exception) when (exception is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }

        lock (_accepted)
        {
            _accepted.ForEach(c => c.Dispose());
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            if (_answer is null)
            {
                lock (_accepted)
                {
                    _accepted.Add(client);
                }

                continue;
            }

            using (client)
            {
                try
                {
                    await client.GetStream().WriteAsync(_answer, _stop.Token);
                }
                catch (IOException)
                {
                    // The client went first.
                }
            }
        }
    }
}
