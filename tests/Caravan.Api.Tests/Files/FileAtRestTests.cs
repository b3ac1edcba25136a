using System.Net;
using System.Text;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// Nothing a user uploaded is readable at rest: after the files are stored and converted, no cell
/// value is found in any file under the data folder (the store, the uploads, the converted
/// databases, the working folders), and after DELETE nothing of the source is left.
/// </summary>
public sealed class FileAtRestTests
{
    [Fact]
    public async Task No_cell_value_is_found_anywhere_under_the_data_folder()
    {
        await using var app = new OwnCaravan();
        var org = await app.NewOrganizationAsync();
        var marker = "cellmarker" + Guid.NewGuid().ToString("N");
        var csv = new StringBuilder("id,note\n");
        for (var i = 0; i < 20_000; i++)
        {
            csv.Append(i).Append(',').Append(marker).Append('-').Append(i).Append('\n');
        }

        var ndjson = string.Join('\n', Enumerable.Range(0, 500).Select(i => $$"""{"k": {{i}}, "v": "{{marker}}-json-{{i}}"}"""));
        var id = await org.Http.UploadFilesAsync(("notes.csv", Encoding.UTF8.GetBytes(csv.ToString())), ("more.ndjson", Encoding.UTF8.GetBytes(ndjson)));
        await org.Http.ReadyFilesAsync(id);
        Assert.Equal("[[1]]", (await org.Http.QueryAsync(id, $"SELECT count(*) FROM notes WHERE note = '{marker}-19999'", HttpStatusCode.OK))["rows"]!.ToJsonString());

        var found = FilesHolding(app.DataDirectory, marker);
        Assert.True(found.Count == 0, "Cell values found in: " + string.Join(", ", found));

        await org.Http.DeleteAsync(new Uri(SourceRoutes.Url(id), UriKind.Relative)).Expect(HttpStatusCode.NoContent);
        Assert.DoesNotContain(Directory.EnumerateFiles(Path.Combine(app.DataDirectory, "files"), "*", SearchOption.AllDirectories),
            f => !f.Contains($"{Path.DirectorySeparatorChar}tmp{Path.DirectorySeparatorChar}", StringComparison.Ordinal));
    }

    /// <summary>Every file under <paramref name="folder"/> whose bytes hold <paramref name="text"/> in UTF-8 or UTF-16.</summary>
    internal static List<string> FilesHolding(string folder, string text)
    {
        byte[][] needles = [Encoding.UTF8.GetBytes(text), Encoding.Unicode.GetBytes(text)];
        return [.. Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(path => needles.Any(needle => Contains(path, needle)))];
    }

    private static bool Contains(string path, byte[] needle)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var buffer = new byte[(1 << 20) + needle.Length];
        var carried = 0;
        int read;
        while ((read = file.Read(buffer, carried, buffer.Length - carried)) > 0)
        {
            var length = carried + read;
            if (buffer.AsSpan(0, length).IndexOf(needle) >= 0)
            {
                return true;
            }

            carried = Math.Min(needle.Length - 1, length);
            buffer.AsSpan(length - carried, carried).CopyTo(buffer);
        }

        return false;
    }
}
