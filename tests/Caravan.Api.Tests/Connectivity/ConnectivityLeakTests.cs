using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>
/// Failed connection tests and discoveries never show a secret: not in a response body, not in any
/// log line, and no six characters of one either (a message cut short must not keep part of it).
/// Every test uses a password of its own, so a hit can only come from that test.
/// </summary>
public sealed class ConnectivityLeakTests(CaravanApp app)
{
    [Fact]
    public async Task A_wrong_password_is_in_no_answer_and_no_log_line()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync(password: SecretFragments.New());
        var wrong = "Wr0ng;pa'ss=" + SecretFragments.New();
        var org = await app.NewOrganizationAsync();
        var body = db.Body(b => b["password"] = wrong);
        var id = await org.Http.CreateSourceAsync(body);

        var answers = new List<string>
        {
            await SendAsync(org.Http, HttpMethod.Post, "/api/v1/sources/test/", body),
            await SendAsync(org.Http, HttpMethod.Post, SourceRoutes.Url(id, "test"), null),
            await SendAsync(org.Http, HttpMethod.Get, SourceRoutes.Url(id, "schemas"), null),
            await SendAsync(org.Http, HttpMethod.Patch, $"{SourceRoutes.Url(id, "update-config")}?verify=true", """{"selected_schemas": ["public"]}"""),
        };

        Assert.Contains(FailureCodes.AuthFailed, answers[0], StringComparison.Ordinal);
        Assert.Contains(FailureCodes.AuthFailed, answers[2], StringComparison.Ordinal);
        AssertNowhere(answers, wrong, db.Password);
    }

    [Fact]
    public async Task The_password_of_a_missing_database_is_in_no_answer_and_no_log_line()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync(password: SecretFragments.New());
        var org = await app.NewOrganizationAsync();
        var body = db.Body(b => b["database_name"] = Unique.Name("missing_"));
        var id = await org.Http.CreateSourceAsync(body);

        var answers = new List<string>
        {
            await SendAsync(org.Http, HttpMethod.Post, "/api/v1/sources/test/", body),
            await SendAsync(org.Http, HttpMethod.Post, SourceRoutes.Url(id, "test"), null),
            await SendAsync(org.Http, HttpMethod.Get, SourceRoutes.Url(id, "schemas"), null),
        };

        Assert.Contains(FailureCodes.DatabaseNotFound, answers[0], StringComparison.Ordinal);
        Assert.Contains(FailureCodes.DatabaseNotFound, answers[2], StringComparison.Ordinal);
        AssertNowhere(answers, db.Password);
    }

    [Fact]
    public async Task The_password_of_a_timed_out_test_is_in_no_answer_and_no_log_line()
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Connectivity:TestTimeoutSeconds"] = "2" });
        var org = await own.NewOrganizationAsync();
        using var silent = LoopbackListener.Silent();
        var password = SecretFragments.New();
        var body = Pg.Body("127.0.0.1", silent.Port, password);
        var id = await org.Http.CreateSourceAsync(body);

        var answers = new List<string>
        {
            await SendAsync(org.Http, HttpMethod.Post, "/api/v1/sources/test/", body),
            await SendAsync(org.Http, HttpMethod.Get, SourceRoutes.Url(id, "schemas"), null),
        };

        Assert.Contains(FailureCodes.Timeout, answers[0], StringComparison.Ordinal);
        Assert.Contains(FailureCodes.Timeout, answers[1], StringComparison.Ordinal);
        AssertNowhere(own, answers, password);
    }

    [Fact]
    public async Task The_password_of_an_egress_denied_source_is_in_no_answer_and_no_log_line()
    {
        var org = await app.NewOrganizationAsync();
        var password = SecretFragments.New();
        var body = Pg.Body("169.254.169.254", 5432, password);
        var id = await org.Http.CreateSourceAsync(body);

        var answers = new List<string>
        {
            await SendAsync(org.Http, HttpMethod.Post, "/api/v1/sources/test/", body),
            await SendAsync(org.Http, HttpMethod.Post, SourceRoutes.Url(id, "test"), null),
            await SendAsync(org.Http, HttpMethod.Get, SourceRoutes.Url(id, "schemas"), null),
        };

        Assert.All(answers, a => Assert.Contains(FailureCodes.EgressDenied, a, StringComparison.Ordinal));
        AssertNowhere(answers, password);
    }

    [Fact]
    public async Task The_password_of_an_unreachable_source_is_in_no_502_and_no_log_line()
    {
        var org = await app.NewOrganizationAsync();
        var password = SecretFragments.New();
        var id = await org.Http.CreateSourceAsync(Pg.Body("127.0.0.1", Loopback.ClosedPort(), password));

        var answers = new List<string>
        {
            await SendAsync(org.Http, HttpMethod.Get, SourceRoutes.Url(id, "schemas"), null),
            await SendAsync(org.Http, HttpMethod.Patch, $"{SourceRoutes.Url(id, "update-config")}?verify=true", """{"selected_schemas": ["x"]}"""),
        };

        Assert.All(answers, a => Assert.Contains(FailureCodes.PortClosed, a, StringComparison.Ordinal));
        AssertNowhere(answers, password);
    }

    [Fact]
    public async Task A_connection_string_with_sslpassword_leaks_neither_secret_nor_the_string()
    {
        // sslmode=require against a server without TLS, then the same source against a closed port.
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync(password: SecretFragments.New());
        var sslPassword = SecretFragments.New();
        var url = $"postgresql://{db.Role}:{Uri.EscapeDataString(db.Password)}@{db.Host}:{db.Port}/{db.Database}"
            + $"?sslmode=require&sslpassword={sslPassword}&application_name=x";
        var body = new JsonObject { ["type"] = "postgres", ["connection_string"] = url }.ToJsonString();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(body);
        var closed = await org.Http.CreateSourceAsync(new JsonObject
        {
            ["type"] = "postgres",
            ["connection_string"] = $"postgresql://{db.Role}:{db.Password}@127.0.0.1:{Loopback.ClosedPort()}/{db.Database}?sslpassword={sslPassword}",
        }.ToJsonString());

        var answers = new List<string>
        {
            await SendAsync(org.Http, HttpMethod.Post, "/api/v1/sources/test/", body),
            await SendAsync(org.Http, HttpMethod.Post, SourceRoutes.Url(id, "test"), null),
            await SendAsync(org.Http, HttpMethod.Get, SourceRoutes.Url(id, "schemas"), null),
            await SendAsync(org.Http, HttpMethod.Post, SourceRoutes.Url(closed, "test"), null),
            await SendAsync(org.Http, HttpMethod.Get, SourceRoutes.Url(closed, "schemas"), null),
            await SendAsync(org.Http, HttpMethod.Get, $"/api/v1/sources/{id}/", null),
        };

        AssertNowhere(answers, db.Password, sslPassword);
        AssertNoneWhole(app, answers, url);
    }

    private static async Task<string> SendAsync(HttpClient client, HttpMethod method, string url, string? json)
    {
        using var request = new HttpRequestMessage(method, new Uri(url, UriKind.Relative));
        if (json is not null)
        {
            request.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        }

        using var response = await client.SendAsync(request);
        return $"{(int)response.StatusCode} {response.Headers} {await response.Content.ReadAsStringAsync()}";
    }

    private void AssertNowhere(IReadOnlyList<string> answers, params string[] secrets) => AssertNowhere(app, answers, secrets);

    /// <summary>
    /// No secret in any answer or log line: whole or URL-encoded, nor any six characters of one.
    /// The secrets are made by <see cref="SecretFragments.New"/>, whose fragments nothing else holds.
    /// </summary>
    private static void AssertNowhere(CaravanApp app, IReadOnlyList<string> answers, params string[] secrets)
    {
        AssertNoneWhole(app, answers, secrets);
        SecretFragments.AssertNone(answers, secrets, "the answers");
        SecretFragments.AssertNone(app.Logs.Lines, secrets, "the log lines");
    }

    /// <summary>Neither the values nor their URL-encoded forms, whole, in any answer or log line (for text made of secrets and more, such as a connection string).</summary>
    private static void AssertNoneWhole(CaravanApp app, IReadOnlyList<string> answers, params string[] values)
    {
        var forms = values.SelectMany(s => new[] { s, Uri.EscapeDataString(s) }).Distinct(StringComparer.Ordinal).ToList();
        foreach (var form in forms)
        {
            Assert.All(answers, a => Assert.DoesNotContain(form, a, StringComparison.OrdinalIgnoreCase));
            Assert.All(app.Logs.Lines, l => Assert.DoesNotContain(form, l, StringComparison.OrdinalIgnoreCase));
        }

        Assert.NotEmpty(app.Logs.Lines);
    }
}
