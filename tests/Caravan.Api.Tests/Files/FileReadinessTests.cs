using System.Net;
using System.Net.Http.Headers;
using Caravan.Api.Connectivity;
using Caravan.Api.Data;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;
using Caravan.Api.Tests.Query;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// What a FILE source shows while its files are on their way (docs/files.md): a file waiting for
/// its conversion is named by the test, a replacement leaves the old table in place until the new
/// one is converted, and a file still arriving is no part of the source yet. Each test has a
/// Caravan of its own whose conversions it can hold back, so "still converting" is certain, not a race.
/// </summary>
public sealed class FileReadinessTests
{
    [Fact]
    public async Task A_source_whose_files_wait_for_conversion_is_named_by_the_test_and_ready_once_they_are_converted()
    {
        await using var own = new OwnCaravan();
        var org = await own.NewOrganizationAsync();
        long id;
        await using (await FileKit.PauseConversionsAsync(own))
        {
            id = await org.Http.UploadFilesAsync(("first.csv", FileKit.Utf8("n\n1\n")), ("second.tsv", FileKit.Utf8("n\tm\n2\t3\n")));

            var files = (await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK))["config"]!["files"]!;
            Assert.Equal(
                [
                    """{"filename":"first.csv","table":"first","bytes":4,"rows":null,"status":"pending","error":null}""",
                    """{"filename":"second.tsv","table":"second","bytes":8,"rows":null,"status":"pending","error":null}""",
                ],
                files.AsArray().Select(f => f!.ToJsonString()).Order(StringComparer.Ordinal));
            Assert.False((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
            var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK);
            Assert.Equal("files:failed connect:skipped query:skipped schemas:skipped", Reports.Outline(report));
            Assert.Equal(FailureCodes.FileNotReady, Reports.Code(report, "files"));
            Assert.Equal(
                ["first.csv is still being converted", "second.tsv is still being converted"],
                Reports.Step(report, "files")["message"]!.GetValue<string>().Split("; ").Order(StringComparer.Ordinal));
            var refused = await org.Http.QueryAsync(id, "SELECT n FROM first", HttpStatusCode.Conflict);
            Assert.Equal("not_configured", refused["code"]!.GetValue<string>());
            Assert.StartsWith("No file of this source is converted yet", refused["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        await org.Http.ReadyFilesAsync(id);
        Assert.True((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
        Assert.Equal("files:ok connect:ok query:ok schemas:ok", Reports.Outline(await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK)));
        Assert.Equal("[[1,2]]", (await org.Http.QueryAsync(id, "SELECT (SELECT n FROM first), (SELECT n FROM second)", HttpStatusCode.OK))["rows"]!.ToJsonString());
    }

    [Fact]
    public async Task A_file_of_the_same_name_replaces_all_of_the_old_ones_tables_only_once_it_is_converted()
    {
        await using var own = new OwnCaravan();
        var org = await own.NewOrganizationAsync();
        var id = await org.Http.UploadFilesAsync(
            ("sales.csv", FileKit.Utf8("amount\n1\n2\n")),
            ("Book.xlsx", TestFiles.Bytes(path => TestFiles.Xlsx(path, ("a", [["x"], [1.0]]), ("b", [["y"], [2.0]])))),
            ("other.csv", FileKit.Utf8("k\n7\n")));
        await org.Http.ReadyFilesAsync(id);

        await using (await FileKit.PauseConversionsAsync(own))
        {
            using (var replacement = FileKit.Form(null,
                ("sales.csv", FileKit.Utf8("amount\n10\n20\n30\n")),
                ("book.xlsx", TestFiles.Bytes(path => TestFiles.Xlsx(path, ("a", [["x"], [5.0], [6.0]]))))))
            {
                await org.Http.UploadAsync(replacement, FileKit.FilesUrl(id)).Expect(HttpStatusCode.OK);
            }

            // Until the new files are converted, the old tables answer, all of them.
            var files = (await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK))["config"]!["files"]!.AsArray();
            Assert.Equal(
                ["Book.xlsx book_a ready", "Book.xlsx book_b ready", "book.xlsx book pending", "other.csv other ready", "sales.csv sales pending", "sales.csv sales ready"],
                files.Select(f => $"{f!["filename"]} {f["table"]} {f["status"]}").Order(StringComparer.Ordinal));
            Assert.False((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
            Assert.Equal("[[3,1,2,7]]", (await org.Http.QueryAsync(id,
                "SELECT (SELECT sum(amount) FROM sales), (SELECT sum(x) FROM book_a), (SELECT sum(y) FROM book_b), (SELECT k FROM other)", HttpStatusCode.OK))["rows"]!.ToJsonString());
            await using (var client = await McpKit.ConnectAsync(own, org.Key))
            {
                var schemas = (await client.CallAsync("list_schemas", new() { ["source_id"] = id })).Ok();
                Assert.Equal(["book_a", "book_b", "other", "sales"], schemas.GetProperty("schemas").EnumerateArray().Select(e => e.GetString()));
                var result = (await client.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = "SELECT sum(amount) FROM sales" })).Ok();
                Assert.Equal("[[3]]", result.GetProperty("rows").GetRawText());
            }

            var waiting = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK);
            Assert.Equal(FailureCodes.FileNotReady, Reports.Code(waiting, "files"));
            Assert.Equal(
                ["book.xlsx is still being converted", "sales.csv is still being converted"],
                Reports.Step(waiting, "files")["message"]!.GetValue<string>().Split("; ").Order(StringComparer.Ordinal));
        }

        var ready = await org.Http.ReadyFilesAsync(id);
        Assert.Equal(["book.xlsx book_a 2", "other.csv other 1", "sales.csv sales 3"], ready.Select(f => $"{f!["filename"]} {f["table"]} {f["rows"]}").Order(StringComparer.Ordinal));
        Assert.True((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
        Assert.Equal("[[60,11,7]]", (await org.Http.QueryAsync(id,
            "SELECT (SELECT sum(amount) FROM sales), (SELECT sum(x) FROM book_a), (SELECT k FROM other)", HttpStatusCode.OK))["rows"]!.ToJsonString());
        await org.Http.QueryAsync(id, "SELECT * FROM book_b", HttpStatusCode.UnprocessableEntity);
        var discovery = await org.Http.GetAsync(new Uri(SourceRoutes.Url(id, "schemas"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(["book_a", "other", "sales"], discovery["results"]!.AsArray().Select(t => t!["name"]!.GetValue<string>()));
        Assert.True((await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK))["ok"]!.GetValue<bool>());

        // The replaced files' objects leave the store (just after the new ones are marked ready):
        // one converted database per file is left, and no upload.
        var store = Path.Combine(own.DataDirectory, "files", "store");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        List<string?> stored;
        while ((stored = [.. Directory.EnumerateFiles(store, "*", SearchOption.AllDirectories).Select(Path.GetFileName)]).Count != 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.Equal(["data.duckdb", "data.duckdb", "data.duckdb"], stored);
    }

    [Fact]
    public async Task A_file_still_arriving_is_no_part_of_the_source_yet()
    {
        // A Caravan process of its own: Kestrel hands a request body to the route as it arrives.
        var directory = CaravanApp.NewDataDirectory();
        var (settings, key) = FileStreamingTests.Settings(directory);
        using var server = await CaravanProcess.Server.StartAsync(settings, directory);
        using var http = server.Client(key);
        var id = await http.UploadFilesAsync(("kept.csv", FileKit.Utf8("n\n1\n")));
        var before = (await http.ReadyFilesAsync(id)).ToJsonString();

        // An upload to the source that stops midway through its file, after Caravan has started storing it.
        using var stalled = new StalledStream(FileKit.Utf8("n\n" + string.Concat(Enumerable.Repeat("2\n", 200_000))), stallAfter: 256 * 1024);
        using var form = new MultipartFormDataContent();
        var part = new StreamContent(stalled, 4096);
        part.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        form.Add(part, "files", "arriving.csv");
        var upload = http.UploadAsync(form, FileKit.FilesUrl(id));
        await UploadingAsync(settings, id, upload);

        var config = await http.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.Equal(before, config["config"]!["files"]!.ToJsonString());
        Assert.True((await http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
        var report = await http.PostJsonAsync(SourceRoutes.Url(id, "test"), "{}").Expect(HttpStatusCode.OK);
        Assert.True(report["ok"]!.GetValue<bool>(), report.ToJsonString());

        stalled.Release();
        await upload.Expect(HttpStatusCode.OK);
        Assert.Equal(["arriving 200000", "kept 1"], (await http.ReadyFilesAsync(id)).Select(f => $"{f!["table"]} {f["rows"]}").Order(StringComparer.Ordinal));
        await server.StopAsync();
    }

    /// <summary>Waits until the store holds a row of a file being uploaded to <paramref name="sourceId"/>.</summary>
    private static async Task UploadingAsync(IReadOnlyDictionary<string, string?> settings, long sourceId, Task<HttpResponseMessage> upload)
    {
        await using var database = new Database(Options.Create(new StorageOptions { Provider = TestStore.Provider, ConnectionString = settings["ConnectionStrings:Caravan"]! }));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            await using var connection = await database.OpenAsync(TestContext.Current.CancellationToken);
            var count = Convert.ToInt64(await connection.Command("SELECT count(*) FROM source_files WHERE source_id = @id AND status = 'uploading'")
                .With("@id", sourceId).ExecuteScalarAsync(TestContext.Current.CancellationToken), System.Globalization.CultureInfo.InvariantCulture);
            if (count > 0)
            {
                return;
            }

            Assert.False(upload.IsCompleted, "The upload ended: " + (upload.IsCompletedSuccessfully ? upload.Result.StatusCode.ToString() : upload.Exception?.ToString()));
            Assert.True(DateTime.UtcNow < deadline, "The upload never started storing its file.");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>Content that stops after <paramref name="stallAfter"/> bytes until <see cref="Release"/>.</summary>
    private sealed class StalledStream(byte[] content, int stallAfter) : ReadOnlyStream
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _position;

        public void Release() => _released.TrySetResult();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position >= stallAfter)
            {
                await _released.Task.WaitAsync(cancellationToken);
            }

            var end = _position < stallAfter ? stallAfter : content.Length;
            var n = Math.Min(buffer.Length, end - _position);
            content.AsMemory(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }
    }
}
