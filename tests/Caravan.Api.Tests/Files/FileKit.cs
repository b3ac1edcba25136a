using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Connectors.Files;
using Caravan.Api.Data;
using Caravan.Api.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Files;

/// <summary>What the FILE source tests share: uploading files, waiting for their conversion, reading them back.</summary>
internal static class FileKit
{
    public const string UploadUrl = "/api/v1/uploads/upload/";

    public static MultipartFormDataContent Form(string? accountName, params (string Name, byte[] Content)[] files)
    {
        var form = new MultipartFormDataContent();
        foreach (var (name, content) in files)
        {
            var part = new ByteArrayContent(content);
            part.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            form.Add(part, "files", name);
        }

        if (accountName is not null)
        {
            form.Add(new StringContent(accountName, Encoding.UTF8), "account_name");
        }

        return form;
    }

    public static Task<HttpResponseMessage> UploadAsync(this HttpClient client, HttpContent content, string url = UploadUrl) =>
        client.PostAsync(new Uri(url, UriKind.Relative), content);

    /// <summary>Uploads files as a new FILE source and returns its id.</summary>
    public static async Task<long> UploadFilesAsync(this HttpClient client, params (string Name, byte[] Content)[] files)
    {
        using var form = Form(null, files);
        var answer = await client.UploadAsync(form).Expect(HttpStatusCode.OK);
        return answer["id"]!.GetValue<long>();
    }

    public static string FilesUrl(long id) => $"/api/v1/sources/{id}/files/";

    /// <summary>The source's <c>config.files</c> once no file is pending any more (within 120 s).</summary>
    public static async Task<JsonArray> SettledFilesAsync(this HttpClient client, long id, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(120));
        while (true)
        {
            var config = await client.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK);
            var files = config["config"]!["files"]!.AsArray();
            if (files.All(f => f!["status"]!.GetValue<string>() != "pending"))
            {
                return files;
            }

            Assert.True(DateTime.UtcNow < deadline, "The files were not converted in time: " + files.ToJsonString());
            await Task.Delay(200);
        }
    }

    /// <summary>Waits until every file is ready (failing on a failed one) and returns them.</summary>
    public static async Task<JsonArray> ReadyFilesAsync(this HttpClient client, long id, TimeSpan? within = null)
    {
        var files = await client.SettledFilesAsync(id, within);
        Assert.All(files, f => Assert.True(f!["status"]!.GetValue<string>() == "ready", "A file failed: " + f.ToJsonString()));
        return files;
    }

    public static async Task<JsonNode> GetSourceAsync(this HttpClient client, long id) =>
        await client.GetAsync(new Uri(SourceRoutes.Url(id), UriKind.Relative)).Expect(HttpStatusCode.OK);

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>Every row the store holds for a source's files, those of requests still uploading included: <c>filename status</c>, sorted.</summary>
    public static async Task<List<string>> StoredFileRowsAsync(this CaravanApp app, long sourceId)
    {
        await using var connection = await app.Services.GetRequiredService<Database>().OpenAsync(TestContext.Current.CancellationToken);
        await using var reader = await connection.Command("SELECT filename, status FROM source_files WHERE source_id = @id")
            .With("@id", sourceId).ExecuteReaderAsync(TestContext.Current.CancellationToken);
        var rows = new List<string>();
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            rows.Add(reader.GetString(0) + " " + reader.GetString(1));
        }

        return [.. rows.Order(StringComparer.Ordinal)];
    }

    /// <summary>
    /// Stops <paramref name="own"/>'s conversions until the result is disposed, as if another
    /// replica held every file's lease: what is uploaded meanwhile stays pending. Only for an app
    /// of the test's own (the shared one converts every test's files).
    /// </summary>
    public static async Task<IAsyncDisposable> PauseConversionsAsync(OwnCaravan own)
    {
        var ingest = own.Services.GetRequiredService<FileIngest>();
        await ingest.StopAsync(TestContext.Current.CancellationToken);
        return new Resumption(ingest);
    }

    private sealed class Resumption(FileIngest ingest) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await ingest.StartAsync(CancellationToken.None);
    }

    /// <summary>The objects of an app's local file store.</summary>
    public static List<string> StoredObjects(CaravanApp app)
    {
        var root = Path.Combine(app.DataDirectory, "files", "store");
        return Directory.Exists(root) ? [.. Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)] : [];
    }

    /// <summary>
    /// What the store holds of a source's files: the ids of its <c>source_files</c> rows and how many
    /// data keys it has in <c>file_data_keys</c>; without a source, every row and key of the store.
    /// </summary>
    public static async Task<(List<string> Files, long Keys)> StoredFileRowsAsync(Database database, long? sourceId = null)
    {
        var where = sourceId is null ? string.Empty : " WHERE source_id = @source";
        await using var connection = await database.OpenAsync(TestContext.Current.CancellationToken);
        var files = new List<string>();
        await using (var reader = await connection.Command("SELECT id FROM source_files" + where).With("@source", sourceId)
            .ExecuteReaderAsync(TestContext.Current.CancellationToken))
        {
            while (await reader.ReadAsync(TestContext.Current.CancellationToken))
            {
                files.Add(reader.GetString(0));
            }
        }

        var keys = Convert.ToInt64(await connection.Command("SELECT count(*) FROM file_data_keys" + where).With("@source", sourceId)
            .ExecuteScalarAsync(TestContext.Current.CancellationToken), System.Globalization.CultureInfo.InvariantCulture);
        return (files, keys);
    }

    /// <summary>How many sources the organization's key lists.</summary>
    public static async Task<int> SourceCountAsync(this HttpClient client) =>
        (await client.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK))["count"]!.GetValue<int>();
}
