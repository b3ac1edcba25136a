using System.Net;
using System.Text;
using Caravan.Api.Connectors.Files;
using Caravan.Api.Data;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// FILE sources on the S3 store (<c>Caravan__Files__Store=S3</c>) against a real S3-compatible
/// server, looked into behind Caravan's back with a client of the test's own: the bucket and the
/// replica's folder hold no cell value, and DELETE leaves nothing of the source in the bucket, in
/// the folder or in the store's rows. Each source's objects are under its files' own random keys,
/// so the tests share the bucket with every other.
/// </summary>
public sealed class FileS3Tests
{
    [Fact]
    public async Task The_bucket_and_the_data_folder_hold_no_cell_value_and_DELETE_leaves_nothing_of_the_source()
    {
        Assert.SkipWhen(S3Kit.Missing, S3Kit.NoServer);
        await using var app = new OwnCaravan(S3Kit.StoreSettings());
        var org = await app.NewOrganizationAsync();
        var database = app.Services.GetRequiredService<Database>();
        var marker = "cellmarker" + Guid.NewGuid().ToString("N");

        var csv = new StringBuilder("id,note\n");
        for (var i = 0; i < 20_000; i++)
        {
            csv.Append(i).Append(',').Append(marker).Append('-').Append(i).Append('\n');
        }

        var workbook = Path.Combine(app.DataDirectory, "upload-sales.xlsx");
        TestFiles.Xlsx(workbook, ("q1", [["label", "amount"], [marker + "-xlsx-a", 2.5], [marker + "-xlsx-b", 4.0]]));
        var id = await org.Http.UploadFilesAsync(("notes.csv", Encoding.UTF8.GetBytes(csv.ToString())), ("sales.xlsx", await File.ReadAllBytesAsync(workbook, TestContext.Current.CancellationToken)));
        File.Delete(workbook);
        await org.Http.ReadyFilesAsync(id);
        Assert.Equal("[[1]]", (await org.Http.QueryAsync(id, $"SELECT count(*) FROM notes WHERE note = '{marker}-19999'", HttpStatusCode.OK))["rows"]!.ToJsonString());
        Assert.Equal($"[[6.5,\"{marker}-xlsx-b\"]]", (await org.Http.QueryAsync(id, "SELECT sum(amount), max(label) FROM sales_q1", HttpStatusCode.OK))["rows"]!.ToJsonString());

        // A file that fails its conversion (its table name is taken) keeps its encrypted upload in the bucket.
        using (var clash = FileKit.Form(null, ("sales_q1.csv", FileKit.Utf8($"label\n{marker}-clash\n"))))
        {
            await org.Http.UploadAsync(clash, FileKit.FilesUrl(id)).Expect(HttpStatusCode.OK);
        }

        var files = await org.Http.SettledFilesAsync(id);
        Assert.Equal("sales_q1.csv gives a table named sales_q1, which sales.xlsx already gives; rename one of the files.",
            files.Single(f => f!["filename"]!.GetValue<string>() == "sales_q1.csv")!["error"]!.GetValue<string>());
        Assert.False((await org.Http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
        Assert.Equal($"[[\"{marker}-xlsx-a\"]]", (await org.Http.QueryAsync(id, "SELECT min(label) FROM sales_q1", HttpStatusCode.OK))["rows"]!.ToJsonString());

        using var s3 = S3Kit.Client();
        var (fileIds, keys) = await FileKit.StoredFileRowsAsync(database, id);
        Assert.Equal(3, fileIds.Count);
        Assert.Equal(1, keys);
        var objects = new List<string>();
        foreach (var fileId in fileIds)
        {
            objects.AddRange(await S3Kit.ListAsync(s3, $"files/{fileId}/"));
        }

        // Two converted databases (their uploads deleted once converted) and the failed file's upload.
        Assert.Equal(2, objects.Count(k => k.EndsWith("/data.duckdb", StringComparison.Ordinal)));
        Assert.Equal(1, objects.Count(k => k.EndsWith("/raw.bin", StringComparison.Ordinal)));
        Assert.Equal(3, objects.Count);
        var downloaded = Path.Combine(Path.GetTempPath(), Unique.Name("caravan-s3-objects-"));
        try
        {
            await S3Kit.DownloadAsync(s3, objects, downloaded);
            var found = FileAtRestTests.FilesHolding(downloaded, marker);
            Assert.True(found.Count == 0, "Cell values found in the objects: " + string.Join(", ", found.Select(Path.GetFileName)));
        }
        finally
        {
            Directory.Delete(downloaded, recursive: true);
        }

        // The replica's folder holds the copies it queried (still encrypted), and no cell value anywhere.
        var cache = Path.Combine(app.DataDirectory, "files", "cache", "files");
        Assert.Equal(2, fileIds.Count(f => File.Exists(Path.Combine(cache, f, "data.duckdb"))));
        var local = FileAtRestTests.FilesHolding(app.DataDirectory, marker);
        Assert.True(local.Count == 0, "Cell values found in: " + string.Join(", ", local));

        await org.Http.DeleteAsync(new Uri(SourceRoutes.Url(id), UriKind.Relative)).Expect(HttpStatusCode.NoContent);

        foreach (var fileId in fileIds)
        {
            Assert.Empty(await S3Kit.ListAsync(s3, $"files/{fileId}/"));
        }

        Assert.DoesNotContain(Directory.EnumerateFiles(Path.Combine(app.DataDirectory, "files"), "*", SearchOption.AllDirectories),
            f => !f.Contains($"{Path.DirectorySeparatorChar}tmp{Path.DirectorySeparatorChar}", StringComparison.Ordinal));
        var (rowsLeft, keysLeft) = await FileKit.StoredFileRowsAsync(database, id);
        Assert.Empty(rowsLeft);
        Assert.Equal(0, keysLeft);
        await org.Http.QueryAsync(id, "SELECT 1", HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_replica_drops_its_copies_of_files_that_another_replica_replaced_or_deleted_at_its_next_sweep()
    {
        Assert.SkipWhen(S3Kit.Missing, S3Kit.NoServer);

        // Two replicas on one store and one bucket, each with its own folder.
        await using var first = new OwnCaravan(S3Kit.StoreSettings());
        var directory = CaravanApp.NewDataDirectory();
        await using var second = new OwnCaravan(directory, new Dictionary<string, string?>(first.Settings) { ["Caravan:Files:Directory"] = Path.Combine(directory, "files") });
        var org = await first.NewOrganizationAsync();
        using var onSecond = second.CreateClient();
        onSecond.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", org.Key);

        var kept = await org.Http.UploadFilesAsync(("kept.csv", FileKit.Utf8("a\n1\n")));
        var replaced = await org.Http.UploadFilesAsync(("sales.csv", FileKit.Utf8("amount\n1\n")));
        var deleted = await org.Http.UploadFilesAsync(("gone.csv", FileKit.Utf8("a\n2\n")));
        foreach (var id in new[] { kept, replaced, deleted })
        {
            await org.Http.ReadyFilesAsync(id);
            await onSecond.QueryAsync(id, "SELECT 1", HttpStatusCode.OK);
        }

        var database = first.Services.GetRequiredService<Database>();
        var keptFile = Assert.Single((await FileKit.StoredFileRowsAsync(database, kept)).Files);
        var replacedFile = Assert.Single((await FileKit.StoredFileRowsAsync(database, replaced)).Files);
        var deletedFile = Assert.Single((await FileKit.StoredFileRowsAsync(database, deleted)).Files);
        var cache = Path.Combine(directory, "files", "cache", "files");
        Assert.All(new[] { keptFile, replacedFile, deletedFile }, f => Assert.True(File.Exists(Path.Combine(cache, f, "data.duckdb")), f));

        // Replaced and deleted through the first replica only: the second's copies are of objects that are gone.
        using (var replacement = FileKit.Form(null, ("sales.csv", FileKit.Utf8("amount\n2\n"))))
        {
            await org.Http.UploadAsync(replacement, FileKit.FilesUrl(replaced)).Expect(HttpStatusCode.OK);
        }

        await org.Http.ReadyFilesAsync(replaced);
        await org.Http.DeleteAsync(new Uri(SourceRoutes.Url(deleted), UriKind.Relative)).Expect(HttpStatusCode.NoContent);
        await second.Services.GetRequiredService<FileIngest>().SweepAsync(TestContext.Current.CancellationToken);

        Assert.False(Directory.Exists(Path.Combine(cache, replacedFile)), "The copy of the replaced file is still there.");
        Assert.False(Directory.Exists(Path.Combine(cache, deletedFile)), "The copy of the deleted source's file is still there.");
        Assert.True(File.Exists(Path.Combine(cache, keptFile, "data.duckdb")));
        Assert.Equal("[[2]]", (await onSecond.QueryAsync(replaced, "SELECT sum(amount) FROM sales", HttpStatusCode.OK))["rows"]!.ToJsonString());
        Assert.Equal("[[1]]", (await onSecond.QueryAsync(kept, "SELECT sum(a) FROM kept", HttpStatusCode.OK))["rows"]!.ToJsonString());
    }
}
