using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using Caravan.Api.Connectivity;
using Caravan.Api.Connectors.Files;
using Caravan.Api.Hosting;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// URL imports' downloader, called directly: every server here is on loopback, which URL imports
/// refuse unless UrlAllow opens it, and listeners count what reached them, to prove a refused
/// download never connected. Cloud metadata is only ever named, never reached: its refusal comes
/// before any connection.
/// </summary>
public sealed class UrlImportTests
{
    private const string LoopbackAllowed = "127.0.0.0/8";
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(300);

    // ---- syntax ----

    [Theory]
    [InlineData("", "Enter the URL")]
    [InlineData("   ", "Enter the URL")]
    [InlineData("http://user:SECRET@127.0.0.1/data.csv", "user name or password")]
    [InlineData("https://SECRET@example.com/data.csv", "user name or password")]
    [InlineData("javascript:alert(1)", "Only http and https")]
    [InlineData("ftp://example.com/data.csv", "Only http and https")]
    [InlineData("file:///etc/passwd", "Only http and https")]
    [InlineData("data:text/csv,a,b", "Only http and https")]
    [InlineData("/data.csv", "absolute URL")]
    [InlineData("data.csv", "absolute URL")]
    [InlineData("//example.com/data.csv", "absolute URL")]
    [InlineData("http://", "absolute URL")]
    [InlineData("http:///data.csv", "absolute URL")]
    public async Task A_URL_of_the_wrong_shape_is_refused_before_anything_is_sent(string url, string expected)
    {
        using var imports = Imports();

        var problem = UrlImports.CheckSyntax(url);
        var failure = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync(url, TestContext.Current.CancellationToken));

        Assert.Contains(expected, problem);
        Assert.Equal(problem, failure.Message);
        Assert.DoesNotContain("SECRET", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_URL_is_at_most_2048_characters_long()
    {
        var prefix = "https://example.com/";

        Assert.Null(UrlImports.CheckSyntax(prefix + new string('a', 2048 - prefix.Length)));
        Assert.Contains("longer than 2048", UrlImports.CheckSyntax(prefix + new string('a', 2049 - prefix.Length)));
    }

    [Theory]
    [InlineData("http://example.com/data.csv")]
    [InlineData("HTTPS://Example.com:8443/a/b.parquet?sig=x#part")]
    [InlineData("  https://example.com/data.csv  ")]
    public void An_absolute_http_or_https_URL_passes_the_syntax_check(string url) => Assert.Null(UrlImports.CheckSyntax(url));

    // ---- addresses ----

    [Theory]
    [InlineData("127.0.0.1", "loopback")]
    [InlineData("::1", "loopback")]
    [InlineData("10.1.2.3", "private")]
    [InlineData("172.16.0.1", "private")]
    [InlineData("172.31.255.255", "private")]
    [InlineData("192.168.1.1", "private")]
    [InlineData("fd12:3456::1", "private")]
    [InlineData("100.64.0.1", "carrier-grade NAT")]
    [InlineData("169.254.1.1", "link-local")]
    [InlineData("fe80::1", "link-local")]
    [InlineData("0.0.0.0", "unspecified")]
    [InlineData("::", "unspecified")]
    [InlineData("224.0.0.1", "multicast")]
    [InlineData("ff02::1", "multicast")]
    [InlineData("240.0.0.1", "reserved")]
    [InlineData("255.255.255.255", "reserved")]
    [InlineData("192.0.0.8", "reserved")]
    [InlineData("::ffff:10.0.0.1", "::ffff:10.0.0.1, a private")]
    [InlineData("::ffff:127.0.0.1", "::ffff:127.0.0.1, a loopback")]
    [InlineData("64:ff9b::7f00:1", "which carries 127.0.0.1, a loopback")]
    [InlineData("2002:c0a8:0101::1", "which carries 192.168.1.1, a private")]
    [InlineData("169.254.169.254", "cloud metadata")]
    [InlineData("169.254.170.2", "cloud metadata")]
    [InlineData("192.0.0.192", "cloud metadata")]
    [InlineData("100.100.100.200", "cloud metadata")]
    [InlineData("168.63.129.16", "cloud metadata")]
    [InlineData("fd00:ec2::254", "cloud metadata")]
    [InlineData("fd20:ce::254", "cloud metadata")]
    [InlineData("::ffff:169.254.169.254", "::ffff:169.254.169.254, a cloud metadata")]
    [InlineData("::a9fe:a9fe", "which carries 169.254.169.254, a cloud metadata")]
    public void An_address_of_the_local_network_or_the_cloud_is_refused_by_default(string address, string expected)
    {
        var refusal = new UrlAddresses(null).Refusal(IPAddress.Parse(address));

        Assert.Contains(expected, refusal);
    }

    [Theory]
    [InlineData("93.184.215.14")]
    [InlineData("172.32.0.1")]
    [InlineData("100.128.0.1")]
    [InlineData("2606:4700::1111")]
    public void A_public_address_is_allowed(string address) => Assert.Null(new UrlAddresses(null).Refusal(IPAddress.Parse(address)));

    [Fact]
    public void Every_address_the_database_egress_policy_refuses_outright_is_refused_by_default()
    {
        var addresses = new UrlAddresses(null);

        Assert.All(EgressPolicy.BuiltInDeny, range => Assert.NotNull(addresses.Refusal(IPNetwork.Parse(range).BaseAddress)));
    }

    [Theory]
    [InlineData("169.254.169.254")]
    [InlineData("169.254.170.23")]
    [InlineData("fd00:ec2::254")]
    [InlineData("::ffff:169.254.169.254")]
    [InlineData("168.63.129.16")]
    public void A_metadata_address_stays_refused_when_UrlAllow_covers_it(string address)
    {
        var everything = new UrlAddresses("169.254.0.0/16, fc00::/7, 0.0.0.0/0, ::/0");

        Assert.Contains("cloud metadata", everything.Refusal(IPAddress.Parse(address)));
        Assert.Null(everything.Refusal(IPAddress.Parse("169.254.1.1")));
        Assert.Null(everything.Refusal(IPAddress.Parse("fd12::1")));
    }

    [Fact]
    public void UrlAllow_opens_exactly_its_ranges_and_an_IPv6_form_of_them()
    {
        var addresses = new UrlAddresses("127.0.0.0/8, 10.1.0.0/16");

        Assert.Null(addresses.Refusal(IPAddress.Parse("127.0.0.1")));
        Assert.Null(addresses.Refusal(IPAddress.Parse("::ffff:127.0.0.1")));
        Assert.Null(addresses.Refusal(IPAddress.Parse("10.1.200.3")));
        Assert.Contains("private", addresses.Refusal(IPAddress.Parse("10.2.0.1")));
        Assert.Contains("loopback", addresses.Refusal(IPAddress.Parse("::1")));
    }

    [Fact]
    public void A_malformed_UrlAllow_names_its_setting()
    {
        var failure = Assert.Throws<StartupFailureException>(() => Imports(allow: "127.0.0.0/8, nonsense"));

        Assert.Contains("Caravan__Files__UrlAllow", failure.Message);
        Assert.Contains("nonsense", failure.Message);
    }

    // ---- refused without a connection ----

    [Theory]
    [InlineData("127.0.0.1", "The URL's host is 127.0.0.1, a loopback address")]
    [InlineData("localhost", "localhost resolves to")]
    [InlineData("127.1", "loopback")]
    [InlineData("2130706433", "loopback")]
    [InlineData("0x7f.1", "loopback")]
    [InlineData("0x7f000001", "loopback")]
    [InlineData("017700000001", "loopback")]
    [InlineData("[::ffff:127.0.0.1]", "::ffff:127.0.0.1, a loopback address")]
    [InlineData("[::ffff:7f00:1]", "::ffff:127.0.0.1, a loopback address")]
    [InlineData("[::127.0.0.1]", "which carries 127.0.0.1, a loopback address")]
    [InlineData("[64:ff9b::127.0.0.1]", "which carries 127.0.0.1, a loopback address")]
    [InlineData("[::1]", "loopback")]
    [InlineData("0.0.0.0", "unspecified")]
    [InlineData("0", "unspecified")]
    [InlineData("[::]", "unspecified")]
    public async Task A_loopback_URL_in_any_form_is_refused_by_default_and_never_connected_to(string host, string expected)
    {
        using var listener = LoopbackListener.Silent();
        using var imports = Imports();

        var failure = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync($"http://{host}:{listener.Port}/data.csv?token=SECRET", TestContext.Current.CancellationToken));
        await Task.Delay(Settle, TestContext.Current.CancellationToken);

        Assert.Contains(expected, failure.Message);
        Assert.Contains("Caravan__Files__UrlAllow can allow it", failure.Message);
        Assert.DoesNotContain("SECRET", failure.Message, StringComparison.Ordinal);
        Assert.Equal(0, listener.Accepted);
    }

    [Fact]
    public async Task A_loopback_URL_is_downloaded_once_UrlAllow_allows_loopback_even_as_an_IPv4_mapped_address()
    {
        await using var server = await UrlServer.StartAsync(context => context.Response.WriteAsync("a,b\n1,2\n", context.RequestAborted));
        using var imports = Imports(allow: LoopbackAllowed);

        foreach (var host in new[] { "127.0.0.1", "localhost", "[::ffff:127.0.0.1]" })
        {
            await using var download = await imports.OpenAsync($"http://{host}:{server.Port}/data.csv", TestContext.Current.CancellationToken);
            Assert.Equal("a,b\n1,2\n", await new StreamReader(download.Content).ReadToEndAsync(TestContext.Current.CancellationToken));
        }

        Assert.Equal(3, server.Requests.Count);
    }

    // ---- redirects ----

    [Fact]
    public async Task A_chain_of_relative_and_absolute_redirects_is_followed_and_the_body_arrives_whole()
    {
        var file = new byte[300_000];
        Random.Shared.NextBytes(file);
        UrlServer? self = null;
        await using var server = self = await UrlServer.StartAsync(async context =>
        {
            switch (context.Request.Path.Value)
            {
                case "/start":
                    context.Response.Redirect("/dir/second");
                    break;
                case "/dir/second":
                    context.Response.StatusCode = 301;
                    context.Response.Headers.Location = "third?step=3";
                    break;
                case "/dir/third":
                    context.Response.StatusCode = 307;
                    context.Response.Headers.Location = $"http://localhost:{self!.Port}/files/data.bin";
                    break;
                case "/files/data.bin":
                    context.Response.ContentType = "application/octet-stream";
                    context.Response.ContentLength = file.Length;
                    await context.Response.Body.WriteAsync(file, context.RequestAborted);
                    break;
                default:
                    context.Response.StatusCode = 404;
                    break;
            }
        });
        using var imports = Imports(allow: LoopbackAllowed);

        await using var download = await imports.OpenAsync($"{server.Url}/start", TestContext.Current.CancellationToken);
        using var received = new MemoryStream();
        await download.Content.CopyToAsync(received, TestContext.Current.CancellationToken);

        Assert.Equal(file, received.ToArray());
        Assert.Equal(["/start", "/dir/second", "/dir/third?step=3", "/files/data.bin"], server.Requests);
        Assert.Equal($"http://localhost:{server.Port}/files/data.bin", download.FinalUrl.AbsoluteUri);
        Assert.Equal("application/octet-stream", download.ContentType);
        Assert.Equal(file.Length, download.Length);
    }

    [Theory]
    [InlineData(5, true)]
    [InlineData(6, false)]
    public async Task At_most_five_redirects_are_followed(int redirects, bool follows)
    {
        await using var server = await UrlServer.StartAsync(context =>
        {
            var left = int.Parse(context.Request.Path.Value!.TrimStart('/'), System.Globalization.CultureInfo.InvariantCulture);
            if (left == 0)
            {
                return context.Response.WriteAsync("done", context.RequestAborted);
            }

            context.Response.Redirect($"/{left - 1}");
            return Task.CompletedTask;
        });
        using var imports = Imports(allow: LoopbackAllowed);

        if (follows)
        {
            await using var download = await imports.OpenAsync($"{server.Url}/{redirects}", TestContext.Current.CancellationToken);
            Assert.Equal("done", await new StreamReader(download.Content).ReadToEndAsync(TestContext.Current.CancellationToken));
        }
        else
        {
            var failure = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync($"{server.Url}/{redirects}", TestContext.Current.CancellationToken));
            Assert.Contains("at most 5", failure.Message);
        }

        Assert.Equal(follows ? redirects + 1 : 6, server.Requests.Count);
    }

    [Theory]
    [InlineData("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "The URL's host is 169.254.169.254, a cloud metadata address")]
    [InlineData("http://[fd00:ec2::254]/latest/meta-data/", "The URL's host is fd00:ec2::254, a cloud metadata address")]
    [InlineData("http://[::ffff:169.254.169.254]/latest/meta-data/", "::ffff:169.254.169.254, a cloud metadata address")]
    [InlineData("http://metadata.google.internal/computeMetadata/v1/?recursive=true", "metadata.google.internal is a cloud metadata service")]
    [InlineData("http://METADATA.google.internal./computeMetadata/v1/", "is a cloud metadata service")]
    public async Task A_redirect_to_cloud_metadata_is_refused_before_connecting_even_with_link_local_allowed(string location, string expected)
    {
        await using var server = await UrlServer.StartAsync(context =>
        {
            context.Response.Redirect(location);
            return Task.CompletedTask;
        });
        using var imports = Imports(allow: "127.0.0.0/8, 169.254.0.0/16, fc00::/7", timeouts: new(TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30)));

        var clock = Stopwatch.StartNew();
        var failure = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync($"{server.Url}/data.csv", TestContext.Current.CancellationToken));

        Assert.StartsWith("The redirect to http://", failure.Message);
        Assert.Contains(" failed: ", failure.Message);
        Assert.Contains(expected, failure.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Caravan never downloads from it", failure.Message);
        Assert.DoesNotContain("recursive", failure.Message, StringComparison.Ordinal);

        // A connection attempted to an address that answers nothing here would hang until the 20 s connect timeout.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"Took {clock.Elapsed}.");
        Assert.Single(server.Requests);
    }

    [Theory]
    [InlineData("ftp://127.0.0.1/data.csv")]
    [InlineData("file:///etc/passwd")]
    [InlineData("gopher://127.0.0.1:6379/_INFO")]
    [InlineData("javascript:alert(1)")]
    public async Task A_redirect_to_another_scheme_is_refused(string location)
    {
        await using var server = await UrlServer.StartAsync(context =>
        {
            context.Response.Redirect(location);
            return Task.CompletedTask;
        });
        using var imports = Imports(allow: LoopbackAllowed);

        var failure = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync($"{server.Url}/data.csv", TestContext.Current.CancellationToken));

        Assert.StartsWith("The redirect to ", failure.Message);
        Assert.EndsWith("was refused: Only http and https URLs can be imported.", failure.Message);
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task A_redirect_to_a_refused_address_is_refused_and_never_connected_to()
    {
        using var listener = LoopbackListener.Silent();
        await using var server = await UrlServer.StartAsync(context =>
        {
            context.Response.Redirect($"http://127.0.0.2:{listener.Port}/data.csv?sig=SECRET");
            return Task.CompletedTask;
        });
        using var imports = Imports(allow: "127.0.0.1/32");

        var failure = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync($"{server.Url}/data.csv", TestContext.Current.CancellationToken));
        await Task.Delay(Settle, TestContext.Current.CancellationToken);

        Assert.Equal(
            $"The redirect to http://127.0.0.2:{listener.Port}/data.csv failed: The URL's host is 127.0.0.2, a loopback address; Caravan__Files__UrlAllow can allow it.",
            failure.Message);
        Assert.Equal(0, listener.Accepted);
    }

    [Fact]
    public async Task A_redirect_without_a_location_is_an_error()
    {
        await using var server = await UrlServer.StartAsync(context =>
        {
            context.Response.StatusCode = 302;
            return Task.CompletedTask;
        });
        using var imports = Imports(allow: LoopbackAllowed);

        var failure = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync($"{server.Url}/data.csv", TestContext.Current.CancellationToken));

        Assert.Contains("answered 302, a redirect, without a valid Location", failure.Message);
    }

    // ---- answers and sizes ----

    [Theory]
    [InlineData(404, "answered 404 Not Found")]
    [InlineData(403, "answered 403 Forbidden")]
    [InlineData(500, "answered 500 Internal Server Error")]
    [InlineData(304, "answered 304 Not Modified")]
    public async Task An_answer_other_than_2xx_is_an_error_naming_its_status(int status, string expected)
    {
        await using var server = await UrlServer.StartAsync(context =>
        {
            context.Response.StatusCode = status;
            return Task.CompletedTask;
        });
        using var imports = Imports(allow: LoopbackAllowed);

        var failure = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync($"{server.Url}/data.csv?token=SECRET", TestContext.Current.CancellationToken));

        Assert.Equal($"{server.Url}/data.csv {expected} instead of the file.", failure.Message);
    }

    [Fact]
    public async Task A_body_whose_Content_Length_is_over_the_limit_is_refused_before_it_is_read()
    {
        var bodyWritten = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await UrlServer.StartAsync(async context =>
        {
            context.Response.ContentLength = 5000;
            await context.Response.StartAsync(context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            try
            {
                // The body only follows a second later: a client that waited for it would be late.
                await Task.Delay(TimeSpan.FromSeconds(5), context.RequestAborted);
                await context.Response.Body.WriteAsync(new byte[5000], context.RequestAborted);
                bodyWritten.TrySetResult(true);
            }
            catch (OperationCanceledException)
            {
                bodyWritten.TrySetResult(false);
            }
        });
        using var imports = Imports(allow: LoopbackAllowed, maxBytes: 4999);

        var clock = Stopwatch.StartNew();
        var failure = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync($"{server.Url}/big.csv", TestContext.Current.CancellationToken));

        Assert.Equal($"The file at {server.Url}/big.csv is 5,000 bytes, more than the limit of 4,999 bytes (Caravan__Files__MaxFileBytes).", failure.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"Took {clock.Elapsed}.");
        Assert.False(await bodyWritten.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_chunked_body_over_the_limit_stops_at_the_limit_and_drops_the_connection()
    {
        const int limit = 1024 * 1024;
        var clientGone = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await UrlServer.StartAsync(async context =>
        {
            var chunk = new byte[16 * 1024];
            long written = 0;
            try
            {
                while (!context.RequestAborted.IsCancellationRequested)
                {
                    await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                    written += chunk.Length;
                }
            }
            catch (Exception exception) when (exception is OperationCanceledException or IOException)
            {
            }

            clientGone.TrySetResult(written);
        });
        using var imports = Imports(allow: LoopbackAllowed, maxBytes: limit);

        await using var download = await imports.OpenAsync($"{server.Url}/endless.csv", TestContext.Current.CancellationToken);
        var buffer = new byte[64 * 1024];
        long handedOut = 0;
        var failure = await Assert.ThrowsAsync<UrlImportException>(async () =>
        {
            while (await download.Content.ReadAsync(buffer, TestContext.Current.CancellationToken) is var read and > 0)
            {
                handedOut += read;
            }
        });

        Assert.Null(download.Length);
        Assert.InRange(handedOut, limit - buffer.Length, limit);
        Assert.Contains("is larger, more than the limit of 1,048,576 bytes", failure.Message);
        await Assert.ThrowsAsync<UrlImportException>(async () => _ = await download.Content.ReadAsync(buffer, TestContext.Current.CancellationToken));

        // Dropped without being drained: the server's writes fail while the client still holds the download.
        await clientGone.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task A_compressed_body_is_handed_out_as_sent_and_counted_as_it_arrives()
    {
        using var compressed = new MemoryStream();
        await using (var gzip = new GZipStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            await gzip.WriteAsync(new byte[8 * 1024 * 1024], TestContext.Current.CancellationToken);
        }

        var sent = compressed.ToArray();
        await using var server = await UrlServer.StartAsync(async context =>
        {
            context.Response.Headers.ContentEncoding = "gzip";
            await context.Response.Body.WriteAsync(sent, context.RequestAborted);
        });
        using var imports = Imports(allow: LoopbackAllowed, maxBytes: 1024 * 1024);

        await using var download = await imports.OpenAsync($"{server.Url}/zeros.csv", TestContext.Current.CancellationToken);
        using var received = new MemoryStream();
        await download.Content.CopyToAsync(received, TestContext.Current.CancellationToken);

        Assert.Equal(sent, received.ToArray());
    }

    // ---- timeouts ----

    [Fact]
    public async Task A_server_that_never_answers_times_out()
    {
        using var listener = LoopbackListener.Silent();
        using var imports = Imports(allow: LoopbackAllowed, timeouts: Short);

        var clock = Stopwatch.StartNew();
        var failure = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync($"http://127.0.0.1:{listener.Port}/data.csv", TestContext.Current.CancellationToken));

        Assert.Equal("127.0.0.1 did not answer within 1 second.", failure.Message);
        Assert.Equal(1, listener.Accepted);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(8));
    }

    [Fact]
    public async Task A_server_that_stops_sending_the_body_times_out()
    {
        await using var server = await UrlServer.StartAsync(async context =>
        {
            await context.Response.Body.WriteAsync(new byte[100], context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            await Task.Delay(Timeout.Infinite, context.RequestAborted);
        });
        using var imports = Imports(allow: LoopbackAllowed, timeouts: Short);

        await using var download = await imports.OpenAsync($"{server.Url}/data.csv", TestContext.Current.CancellationToken);
        var clock = Stopwatch.StartNew();
        var failure = await Assert.ThrowsAsync<UrlImportException>(() => download.Content.CopyToAsync(Stream.Null, TestContext.Current.CancellationToken));

        Assert.Equal("127.0.0.1 sent nothing for 1 second; the download was stopped.", failure.Message);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(8));
    }

    [Fact]
    public async Task A_body_cut_short_of_its_Content_Length_is_an_error()
    {
        await using var server = await UrlServer.StartAsync(async context =>
        {
            context.Response.ContentLength = 1000;
            await context.Response.Body.WriteAsync(new byte[100], context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            await Task.Delay(Settle, context.RequestAborted);
            context.Abort();
        });
        using var imports = Imports(allow: LoopbackAllowed);

        await using var download = await imports.OpenAsync($"{server.Url}/data.csv", TestContext.Current.CancellationToken);
        var failure = await Assert.ThrowsAsync<UrlImportException>(() => download.Content.CopyToAsync(Stream.Null, TestContext.Current.CancellationToken));

        Assert.Equal("The download from 127.0.0.1 broke off before the whole file arrived.", failure.Message);
    }

    [Fact]
    public async Task A_closed_port_and_an_unknown_name_are_errors()
    {
        using var imports = Imports(allow: LoopbackAllowed);
        var port = Loopback.ClosedPort();

        var closed = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync($"http://127.0.0.1:{port}/data.csv", TestContext.Current.CancellationToken));
        var unknown = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync("http://no-such-host.invalid/data.csv", TestContext.Current.CancellationToken));

        Assert.Equal($"Nothing accepts connections on 127.0.0.1 port {port}.", closed.Message);
        Assert.Equal("The host name no-such-host.invalid could not be resolved. Check its spelling.", unknown.Message);
    }

    [Fact]
    public async Task A_certificate_that_is_not_trusted_is_an_error()
    {
        using var certificate = Certificates.SelfSigned("files.caravan.test");
        var (app, url) = await StandIn.StartKestrelAsync(context => context.Response.WriteAsync("a,b\n", context.RequestAborted), certificate);
        await using var _ = app;
        using var imports = Imports(allow: LoopbackAllowed);

        var failure = await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync($"{url}/data.csv", TestContext.Current.CancellationToken));

        Assert.Equal("The TLS connection to 127.0.0.1 failed: its certificate is not valid for the name, or not trusted.", failure.Message);
    }

    // ---- secrets ----

    [Fact]
    public async Task No_message_repeats_a_URL_s_query_or_credentials()
    {
        await using var server = await UrlServer.StartAsync(context =>
        {
            switch (context.Request.Path.Value)
            {
                case "/ftp":
                    context.Response.Redirect("ftp://user:SECRET1@127.0.0.1/x.csv?sig=SECRET2");
                    break;
                case "/userinfo":
                    context.Response.Redirect("http://user:SECRET1@127.0.0.1/x.csv?sig=SECRET2");
                    break;
                case "/metadata":
                    context.Response.Redirect("http://169.254.169.254/latest/?sig=SECRET2#SECRET3");
                    break;
                case "/loop":
                    context.Response.Redirect("/loop?sig=SECRET2");
                    break;
                default:
                    context.Response.StatusCode = 404;
                    break;
            }

            return Task.CompletedTask;
        });
        using var imports = Imports(allow: LoopbackAllowed);
        using var strict = Imports();

        var failures = new List<UrlImportException>();
        foreach (var path in new[] { "/ftp", "/userinfo", "/metadata", "/loop", "/missing" })
        {
            failures.Add(await Assert.ThrowsAsync<UrlImportException>(() => imports.OpenAsync($"{server.Url}{path}?token=SECRET4#SECRET5", TestContext.Current.CancellationToken)));
        }

        failures.Add(await Assert.ThrowsAsync<UrlImportException>(() => strict.OpenAsync($"{server.Url}/missing?token=SECRET4", TestContext.Current.CancellationToken)));
        failures.Add(await Assert.ThrowsAsync<UrlImportException>(() => strict.OpenAsync("http://user:SECRET1@127.0.0.1/?SECRET2", TestContext.Current.CancellationToken)));

        Assert.All(failures, failure =>
        {
            Assert.DoesNotContain("SECRET", failure.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain("token", failure.Message, StringComparison.Ordinal);
        });
    }

    private static readonly UrlTimeouts Short = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

    private static UrlImports Imports(string? allow = null, long maxBytes = 64L * 1024 * 1024, UrlTimeouts? timeouts = null) =>
        new(Options.Create(new FilesOptions { UrlAllow = allow, MaxFileBytes = maxBytes }), timeouts);
}

/// <summary>A file server on loopback for URL imports: Kestrel serving every request with the test's handler, recording each path and query.</summary>
internal sealed class UrlServer : IAsyncDisposable
{
    private readonly ConcurrentQueue<string> _requests = new();
    private WebApplication _app = null!;

    public string Url { get; private set; } = string.Empty;

    public int Port => new Uri(Url).Port;

    public IReadOnlyList<string> Requests => [.. _requests];

    public static async Task<UrlServer> StartAsync(RequestDelegate serve)
    {
        var server = new UrlServer();
        (server._app, server.Url) = await StandIn.StartKestrelAsync(context =>
        {
            server._requests.Enqueue(context.Request.Path + context.Request.QueryString);
            return serve(context);
        });
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
