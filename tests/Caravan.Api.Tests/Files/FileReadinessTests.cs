using System.Net;
using System.Net.Http.Headers;
using Caravan.Api.Data;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// What a FILE source shows while its files are on their way (docs/files.md): a file still
/// arriving is no part of the source yet.
/// </summary>
public sealed class FileReadinessTests
{
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
