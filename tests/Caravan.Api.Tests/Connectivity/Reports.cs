using System.Text.Json;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Hosting;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>Reading and checking a connection test's report (contract section 8) as the routes answer it.</summary>
public static class Reports
{
    /// <summary>The steps of every driver that connects over TCP, in report order.</summary>
    public static readonly string[] Steps = ["resolve", "egress", "connect", "tls", "authenticate", "query", "schemas"];

    private static readonly string[] Statuses = ["ok", "failed", "skipped"];

    /// <summary>A report of a test run as the routes write it.</summary>
    public static JsonNode Of(TestReport report) => JsonSerializer.SerializeToNode(report, ApiJson.Context.TestReport)!;

    public static JsonObject Step(JsonNode report, string name) =>
        report["steps"]!.AsArray().Single(s => s!["name"]!.GetValue<string>() == name)!.AsObject();

    public static string Status(JsonNode report, string name) => Step(report, name)["status"]!.GetValue<string>();

    public static string? Code(JsonNode report, string name) => Step(report, name)["code"]?.GetValue<string>();

    /// <summary>The name of the one step that failed.</summary>
    public static string Failed(JsonNode report) =>
        report["steps"]!.AsArray().Single(s => s!["status"]!.GetValue<string>() == "failed")!["name"]!.GetValue<string>();

    public static IReadOnlyList<string> Names(JsonNode report) =>
        [.. report["steps"]!.AsArray().Select(s => s!["name"]!.GetValue<string>())];

    /// <summary>Every step's name and status, in report order: "resolve:ok egress:ok ...".</summary>
    public static string Outline(JsonNode report) =>
        string.Join(' ', report["steps"]!.AsArray().Select(s => $"{s!["name"]}:{s["status"]}"));

    /// <summary>Asserts the exact key sets of the report and of every step, and the types of their values.</summary>
    public static JsonObject AssertShape(JsonNode report)
    {
        var root = report.AsObject();
        Assert.Equal(["duration_ms", "ok", "steps"], root.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.True(root["duration_ms"]!.GetValue<long>() >= 0);
        _ = root["ok"]!.GetValue<bool>();
        foreach (var step in root["steps"]!.AsArray())
        {
            var entry = step!.AsObject();
            Assert.Equal(["code", "duration_ms", "message", "name", "status"], entry.Select(p => p.Key).Order(StringComparer.Ordinal));
            Assert.Contains(entry["status"]!.GetValue<string>(), Statuses);
            Assert.True(entry["duration_ms"]!.GetValue<long>() >= 0);
            Assert.False(string.IsNullOrEmpty(entry["name"]!.GetValue<string>()));
            if (entry["status"]!.GetValue<string>() == "failed")
            {
                Assert.False(string.IsNullOrEmpty(entry["code"]?.GetValue<string>()), $"a failed step has a code: {report.ToJsonString()}");
                Assert.False(string.IsNullOrWhiteSpace(entry["message"]?.GetValue<string>()), $"a failed step has a message: {report.ToJsonString()}");
            }
            else
            {
                Assert.Null(entry["code"]);
            }
        }

        // A report is ok exactly when no step failed, and one that is not names the one step it failed at.
        var failures = root["steps"]!.AsArray().Count(s => s!["status"]!.GetValue<string>() == "failed");
        Assert.True(root["ok"]!.GetValue<bool>() ? failures == 0 : failures == 1, $"ok and the failed steps disagree: {report.ToJsonString()}");
        return root;
    }

    /// <summary>The steps of a test of a source reached through an SSH tunnel (contract section 10).</summary>
    public static readonly string[] TunnelledSteps =
        ["resolve", "egress", "ssh_connect", "ssh_hostkey", "ssh_auth", "ssh_forward", "tls", "authenticate", "query", "schemas"];

    /// <summary>
    /// Asserts the shape, ok, every step of <see cref="Steps"/> (or <see cref="TunnelledSteps"/>) in
    /// order, and each of them ok, except tls, which may be skipped with a reason (on a server
    /// without encryption).
    /// </summary>
    public static void AssertPassed(JsonNode report, bool tunnelled = false)
    {
        AssertShape(report);
        var text = report.ToJsonString();
        Assert.True(report["ok"]!.GetValue<bool>(), text);
        var steps = tunnelled ? TunnelledSteps : Steps;
        Assert.Equal(steps, Names(report));
        foreach (var step in steps)
        {
            var status = Status(report, step);
            if (step == "tls" && status == "skipped")
            {
                Assert.False(string.IsNullOrEmpty(Step(report, step)["message"]?.GetValue<string>()), $"tls is skipped without a reason: {text}");
            }
            else
            {
                Assert.True(status == "ok", $"{step} is {status}: {text}");
            }
        }
    }

    /// <summary>
    /// Asserts the shape, ok false, every step of <see cref="Steps"/> in order, exactly
    /// <paramref name="step"/> failed with <paramref name="code"/> and a message, no step before it
    /// failed and every step after it was skipped.
    /// </summary>
    public static void AssertFailedAt(JsonNode report, string step, string code)
    {
        AssertShape(report);
        var text = report.ToJsonString();
        Assert.False(report["ok"]!.GetValue<bool>(), text);
        Assert.Equal(Steps, Names(report));
        var steps = report["steps"]!.AsArray().Select(s => s!.AsObject()).ToList();
        var index = steps.FindIndex(s => s["name"]!.GetValue<string>() == step);
        Assert.True(index >= 0, $"no step {step}: {text}");
        Assert.True(steps[index]["status"]!.GetValue<string>() == "failed", $"{step} did not fail: {text}");
        Assert.True(steps[index]["code"]!.GetValue<string>() == code, $"{step} failed with another code than {code}: {text}");
        Assert.All(steps.Take(index), s => Assert.NotEqual("failed", s["status"]!.GetValue<string>()));
        Assert.All(steps.Skip(index + 1), s => Assert.True(s["status"]!.GetValue<string>() == "skipped", $"{s["name"]} after the failure is not skipped: {text}"));
    }
}
