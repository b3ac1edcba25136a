using System.Net;
using Caravan.Api.Data;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// URL imports through the routes (<c>POST /api/v1/uploads/upload/</c>, the unified create route and
/// <c>POST /api/v1/sources/{id}/files/</c>), against a Caravan of the test's own. The file servers
/// are on loopback and record every request: a URL Caravan refuses must never reach them, and a
/// refused request must leave no source, no stored object and no row behind, even when a file of
/// the same request was already downloaded and stored. Cloud metadata is only ever named in a
/// redirect, never reached: its refusal comes before any connection.
/// </summary>
public sealed class FileUrlRouteTests
{
    private const string Unified = "/api/v1/sources/";
    private const string Csv = "region,amount,note\nnorth,10,fjord\nsouth,32,dune\nnorth,5,tundra\n";

    [Fact]
    public async Task A_loopback_URL_is_refused_by_default_on_every_route_and_the_server_never_hears_of_it()
    {
        await using var server = await UrlServer.StartAsync(context => context.Response.WriteAsync(Csv, context.RequestAborted));
        using var listener = LoopbackListener.Silent();
        await using var app = new OwnCaravan();
        var org = await app.NewOrganizationAsync();
        var existing = await org.Http.UploadFilesAsync(("kept.csv", FileKit.Utf8("a\n1\n")));
        await org.Http.ReadyFilesAsync(existing);
        var before = await FileKit.StoredFileRowsAsync(Store(app));
        var objects = FileKit.StoredObjects(app);

        string[] urls =
        [
            $"{server.Url}/data.csv", $"http://localhost:{server.Port}/data.csv", $"http://[::ffff:127.0.0.1]:{server.Port}/data.csv",
            $"http://127.0.0.1:{listener.Port}/data.csv",
        ];
        foreach (var url in urls)
        {
            var item = $$"""[{"url": "{{url}}", "filename": "data.csv"}]""";
            foreach (var (route, body) in new[]
            {
                (FileKit.UploadUrl, $$"""{"file_urls": {{item}}}"""),
                (Unified, $$"""{"type": "FILE", "account_name": "from a URL", "file_urls": {{item}}}"""),
                (FileKit.FilesUrl(existing), $$"""{"file_urls": {{item}}}"""),
            })
            {
                var refused = await org.Http.PostJsonAsync(route, body).Expect(HttpStatusCode.BadRequest);
                var message = Assert.Single(refused["errors"]!["file_urls[0].url"]!.AsArray())!.GetValue<string>();
                Assert.Contains("a loopback address; Caravan__Files__UrlAllow can allow it", message, StringComparison.Ordinal);
                Assert.Equal(["file_urls[0].url"], refused["errors"]!.AsObject().Select(e => e.Key));
            }
        }

        await Task.Delay(TimeSpan.FromMilliseconds(300), TestContext.Current.CancellationToken);
        Assert.Empty(server.Requests);
        Assert.Equal(0, listener.Accepted);
        Assert.Equal(1, await org.Http.SourceCountAsync());
        Assert.Equal(objects, FileKit.StoredObjects(app));
        var after = await FileKit.StoredFileRowsAsync(Store(app));
        Assert.Equal(before.Files, after.Files);
        Assert.Equal(before.Keys, after.Keys);
        Assert.Equal(["kept"], (await org.Http.ReadyFilesAsync(existing)).Select(f => f!["table"]!.GetValue<string>()));
    }

    [Fact]
    public async Task With_loopback_allowed_a_redirect_chain_across_two_servers_is_followed_and_the_file_is_imported_on_every_route()
    {
        UrlServer? second = null;
        await using var first = await UrlServer.StartAsync(context =>
        {
            switch (context.Request.Path.Value)
            {
                case "/start":
                    context.Response.Redirect($"http://localhost:{second!.Port}/hop?step=2");
                    break;
                case "/back":
                    context.Response.StatusCode = StatusCodes.Status301MovedPermanently;
                    context.Response.Headers.Location = $"{second!.Url}/files/sales.csv";
                    break;
                default:
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    break;
            }

            return Task.CompletedTask;
        });
        await using var secondServer = second = await UrlServer.StartAsync(context =>
        {
            switch (context.Request.Path.Value)
            {
                case "/hop":
                    context.Response.StatusCode = StatusCodes.Status307TemporaryRedirect;
                    context.Response.Headers.Location = $"{first.Url}/back";
                    return Task.CompletedTask;
                case "/files/sales.csv":
                    context.Response.ContentType = "text/csv";
                    return context.Response.WriteAsync(Csv, context.RequestAborted);
                case "/files/costs.csv":
                    return context.Response.WriteAsync("region,cost\nnorth,7\n", context.RequestAborted);
                default:
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return Task.CompletedTask;
            }
        });
        await using var app = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Files:UrlAllow"] = "127.0.0.0/8" });
        var org = await app.NewOrganizationAsync();
        var chain = $$"""[{"url": "{{first.Url}}/start?token=abc", "filename": "Sales 2026.csv"}]""";

        var uploaded = (await org.Http.PostJsonAsync(FileKit.UploadUrl, $$"""{"file_urls": {{chain}}}""").Expect(HttpStatusCode.OK))["id"]!.GetValue<long>();
        var created = await org.Http.CreateSourceAsync($$"""{"type": "FILE", "account_name": "Imported sales", "file_urls": {{chain}}}""");

        // 302, then 307, then 301: three redirects over two ports, then the file.
        Assert.Equal(["/start?token=abc", "/back", "/start?token=abc", "/back"], first.Requests);
        Assert.Equal(["/hop?step=2", "/files/sales.csv", "/hop?step=2", "/files/sales.csv"], second.Requests);
        foreach (var id in new[] { uploaded, created })
        {
            var file = Assert.Single(await org.Http.ReadyFilesAsync(id))!;
            Assert.Equal("Sales 2026.csv", file["filename"]!.GetValue<string>());
            Assert.Equal("sales_2026", file["table"]!.GetValue<string>());
            Assert.Equal(FileKit.Utf8(Csv).Length, file["bytes"]!.GetValue<long>());
            Assert.Equal(3, file["rows"]!.GetValue<long>());
            var rows = await org.Http.QueryAsync(id, "SELECT region, sum(amount), string_agg(note, ' ' ORDER BY note) FROM sales_2026 GROUP BY region ORDER BY region", HttpStatusCode.OK);
            Assert.Equal("""[["north",15,"fjord tundra"],["south",32,"dune"]]""", rows["rows"]!.ToJsonString());
            Assert.True((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
        }

        Assert.Equal("Sales 2026.csv", (await org.Http.GetSourceAsync(uploaded))["account_name"]!.GetValue<string>());
        Assert.Equal("Imported sales", (await org.Http.GetSourceAsync(created))["account_name"]!.GetValue<string>());

        // And a URL added to an existing source becomes one more table of it.
        await org.Http.PostJsonAsync(FileKit.FilesUrl(created), $$"""{"file_urls": [{"url": "{{second.Url}}/files/costs.csv", "filename": "costs.csv"}]}""")
            .Expect(HttpStatusCode.OK);
        Assert.Equal(2, (await org.Http.ReadyFilesAsync(created)).Count);
        var joined = await org.Http.QueryAsync(created, "SELECT s.region, sum(s.amount), min(c.cost) FROM sales_2026 s JOIN costs c USING (region) GROUP BY 1", HttpStatusCode.OK);
        Assert.Equal("""[["north",15,7]]""", joined["rows"]!.ToJsonString());
    }

    [Theory]
    [InlineData("127.0.0.0/8, 169.254.0.0/16", "http://169.254.169.254/latest/meta-data/iam/security-credentials/", "169.254.169.254, a cloud metadata address")]
    [InlineData("0.0.0.0/0, ::/0", "http://169.254.169.254/latest/meta-data/", "169.254.169.254, a cloud metadata address")]
    [InlineData("0.0.0.0/0, ::/0", "http://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254, a cloud metadata address")]
    [InlineData("127.0.0.0/8, 169.254.0.0/16", "http://metadata.google.internal/computeMetadata/v1/?recursive=true", "metadata.google.internal is a cloud metadata service")]
    [InlineData("0.0.0.0/0, ::/0", "http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal is a cloud metadata service")]
    public async Task A_redirect_to_cloud_metadata_is_refused_whatever_UrlAllow_opens_and_nothing_is_kept(string allow, string metadata, string expected)
    {
        await using var server = await UrlServer.StartAsync(context =>
        {
            if (context.Request.Path.Value == "/first.csv")
            {
                return context.Response.WriteAsync(Csv, context.RequestAborted);
            }

            context.Response.Redirect(metadata);
            return Task.CompletedTask;
        });
        await using var app = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Files:UrlAllow"] = allow });
        var org = await app.NewOrganizationAsync();

        // The first file is downloaded and stored before the second URL is refused: it must go too.
        var urls = $$"""[{"url": "{{server.Url}}/first.csv", "filename": "first.csv"}, {"url": "{{server.Url}}/second.csv", "filename": "second.csv"}]""";
        foreach (var body in new[] { $$"""{"file_urls": {{urls}}}""", $$"""{"type": "FILE", "file_urls": {{urls}}}""" })
        {
            var route = body.Contains("\"type\"", StringComparison.Ordinal) ? Unified : FileKit.UploadUrl;
            var refused = await org.Http.PostJsonAsync(route, body).Expect(HttpStatusCode.BadRequest);

            Assert.Equal(["file_urls[1].url"], refused["errors"]!.AsObject().Select(e => e.Key));
            var message = Assert.Single(refused["errors"]!["file_urls[1].url"]!.AsArray())!.GetValue<string>();

            // Only the address check (before a socket is opened) and the name check (before DNS) say this;
            // a connection attempted to an address that answers nothing here would end in a timeout instead.
            Assert.StartsWith("The redirect to http://", message, StringComparison.Ordinal);
            Assert.Contains(expected, message, StringComparison.Ordinal);
            Assert.Contains("Caravan never downloads from it", message, StringComparison.Ordinal);
            Assert.DoesNotContain("recursive", message, StringComparison.Ordinal);
        }

        Assert.Equal(["/first.csv", "/second.csv", "/first.csv", "/second.csv"], server.Requests);
        await AssertNothingKeptAsync(app, org);
    }

    [Fact]
    public async Task A_metadata_URL_named_directly_is_refused_with_everything_allowed()
    {
        await using var app = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Files:UrlAllow"] = "0.0.0.0/0, ::/0" });
        var org = await app.NewOrganizationAsync();

        foreach (var (url, expected) in new[]
        {
            ("http://169.254.169.254/latest/meta-data/", "The URL's host is 169.254.169.254, a cloud metadata address; Caravan never downloads from it."),
            ("http://[::ffff:169.254.169.254]/latest/", "The URL's host is ::ffff:169.254.169.254, a cloud metadata address; Caravan never downloads from it."),
            ("http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal is a cloud metadata service; Caravan never downloads from it."),
        })
        {
            var refused = await org.Http.PostJsonAsync(Unified, $$"""{"type": "FILE", "file_urls": [{"url": "{{url}}", "filename": "m.csv"}]}""")
                .Expect(HttpStatusCode.BadRequest);
            Assert.Equal(expected, Assert.Single(refused["errors"]!["file_urls[0].url"]!.AsArray())!.GetValue<string>());
        }

        await AssertNothingKeptAsync(app, org);
    }

    [Fact]
    public async Task Five_redirects_are_followed_through_the_route_and_a_sixth_is_refused_with_nothing_kept()
    {
        await using var server = await UrlServer.StartAsync(context =>
        {
            var left = int.Parse(context.Request.Path.Value!.Split('/')[1], System.Globalization.CultureInfo.InvariantCulture);
            if (left == 0)
            {
                return context.Response.WriteAsync("hops\n" + context.Request.Path.Value!.Split('/')[2] + "\n", context.RequestAborted);
            }

            context.Response.Redirect($"/{left - 1}/{context.Request.Path.Value!.Split('/')[2]}");
            return Task.CompletedTask;
        });
        await using var app = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Files:UrlAllow"] = "127.0.0.0/8" });
        var org = await app.NewOrganizationAsync();

        var refused = await org.Http.PostJsonAsync(FileKit.UploadUrl, $$"""{"file_urls": [{"url": "{{server.Url}}/6/6", "filename": "six.csv"}]}""")
            .Expect(HttpStatusCode.BadRequest);
        var message = Assert.Single(refused["errors"]!["file_urls[0].url"]!.AsArray())!.GetValue<string>();
        Assert.Equal($"{server.Url}/1/6 redirects again after 5 redirects; Caravan follows at most 5.", message);
        Assert.Equal(6, server.Requests.Count);
        await AssertNothingKeptAsync(app, org);

        var id = (await org.Http.PostJsonAsync(FileKit.UploadUrl, $$"""{"file_urls": [{"url": "{{server.Url}}/5/5", "filename": "five.csv"}]}""")
            .Expect(HttpStatusCode.OK))["id"]!.GetValue<long>();
        await org.Http.ReadyFilesAsync(id);
        Assert.Equal("[[5]]", (await org.Http.QueryAsync(id, "SELECT hops FROM five", HttpStatusCode.OK))["rows"]!.ToJsonString());
        Assert.Equal(6 + 6, server.Requests.Count);
    }

    private static Database Store(CaravanApp app) => app.Services.GetRequiredService<Database>();

    /// <summary>No source, no object in the file store, no file row and no data key: a refused request left nothing.</summary>
    private static async Task AssertNothingKeptAsync(OwnCaravan app, OrgClient org)
    {
        Assert.Equal(0, await org.Http.SourceCountAsync());
        Assert.Empty(FileKit.StoredObjects(app));
        var (files, keys) = await FileKit.StoredFileRowsAsync(Store(app));
        Assert.Empty(files);
        Assert.Equal(0, keys);
    }
}
