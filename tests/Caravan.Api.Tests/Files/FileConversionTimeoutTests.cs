using System.Net;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;

namespace Caravan.Api.Tests.Files;

/// <summary>A conversion that runs past Caravan__Files__ConversionTimeout is stopped, fails its file, and frees the replica.</summary>
public sealed class FileConversionTimeoutTests
{
    [Fact]
    public async Task A_conversion_past_the_time_limit_fails_its_file_and_the_next_file_converts()
    {
        await using var own = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Files:ConversionTimeout"] = "00:00:01" });
        var org = await own.NewOrganizationAsync();
        org.Http.Timeout = TimeSpan.FromMinutes(5);

        // About 200 MB of CSV takes several seconds to convert.
        var (id, _) = await FileStreamingTests.UploadGeneratedAsync(org.Http, 200L << 20, "slow.csv");
        var files = await org.Http.SettledFilesAsync(id, TimeSpan.FromMinutes(3));
        var slow = Assert.Single(files)!;
        Assert.Equal("failed", slow["status"]!.GetValue<string>());
        Assert.Equal("slow.csv: the conversion took longer than Caravan__Files__ConversionTimeout (00:00:01) and was stopped.", slow["error"]!.GetValue<string>());
        Assert.Empty(Directory.Exists(Path.Combine(own.DataDirectory, "files", "work"))
            ? Directory.EnumerateFileSystemEntries(Path.Combine(own.DataDirectory, "files", "work"))
            : []);

        // The replica goes on with the next file. A conversion of three lines takes well under the
        // one second allowed, but on a machine loaded by the rest of the suite it can take longer and
        // be stopped too: then it is sent again (the point is that the replica is not held up).
        for (var attempt = 1; ; attempt++)
        {
            using var form = FileKit.Form(null, ("quick.csv", FileKit.Utf8("n\n4\n5\n")));
            await org.Http.UploadAsync(form, FileKit.FilesUrl(id)).Expect(HttpStatusCode.OK);
            var quick = (await org.Http.SettledFilesAsync(id, TimeSpan.FromMinutes(1)))
                .Last(f => f!["filename"]!.GetValue<string>() == "quick.csv")!;
            if (quick["status"]!.GetValue<string>() == "ready")
            {
                break;
            }

            Assert.Equal("quick.csv: the conversion took longer than Caravan__Files__ConversionTimeout (00:00:01) and was stopped.", quick["error"]!.GetValue<string>());
            Assert.True(attempt < 10, "quick.csv never converted within the time limit: " + quick.ToJsonString());
        }

        var answer = await org.Http.QueryAsync(id, "SELECT sum(n) FROM quick", HttpStatusCode.OK);
        Assert.Equal("[[9]]", answer["rows"]!.ToJsonString());
    }

    [Fact]
    public async Task A_time_limit_that_is_not_positive_is_refused_at_start()
    {
        var texts = await OwnCaravan.RefusedStartTextsAsync(new Dictionary<string, string?> { ["Caravan:Files:ConversionTimeout"] = "00:00:00" });
        Assert.Contains(texts, t => t.Contains("Caravan__Files__ConversionTimeout must be a positive time span", StringComparison.Ordinal));
    }
}
