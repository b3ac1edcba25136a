using System.Net;
using System.Security.Cryptography;
using Caravan.Api.Data;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// FILE sources on two replicas, as a deployment behind a load balancer runs them: two Caravan
/// processes that share nothing but one PostgreSQL store, one bucket and the master key (each has
/// its own data folder). A file uploaded through one is converted by whichever claims it and
/// queried through the other; a replacement uploaded through the other is seen by the first.
/// Runs whenever a PostgreSQL server and an S3-compatible server are configured, in both lanes of
/// ./test.sh (the replicas' store is PostgreSQL whatever the lane's own store is).
/// </summary>
public sealed class FileReplicaTests : IAsyncLifetime
{
    private readonly List<CaravanProcess.Server> _servers = [];
    private readonly List<string> _directories = [];
    private Database? _store;

    public async ValueTask InitializeAsync()
    {
        var missing = new List<string>();
        if (string.IsNullOrEmpty(TestStore.PostgresAdmin))
        {
            missing.Add("a PostgreSQL server for the shared store (CARAVAN_TEST_POSTGRES)");
        }

        if (S3Kit.Missing)
        {
            missing.Add("an S3-compatible server for the shared bucket (CARAVAN_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY, _SECRET_KEY)");
        }

        Assert.SkipWhen(missing.Count > 0, $"Two replicas need {string.Join(" and ", missing)}; ./test.sh starts both.");
        var connectionString = TestStore.CreatePostgresDatabase();
        _store = new Database(Options.Create(new StorageOptions { Provider = StorageProvider.Postgres, ConnectionString = connectionString }));
        var masterKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        Key = Unique.ApiKey();

        // One after the other: the first makes the bootstrap key, the second finds it.
        for (var i = 0; i < 2; i++)
        {
            var directory = CaravanApp.NewDataDirectory();
            _directories.Add(directory);
            var settings = S3Kit.StoreSettings();
            settings["Caravan:Storage:Provider"] = "Postgres";
            settings["ConnectionStrings:Caravan"] = connectionString;
            settings["Caravan:Secrets:MasterKey"] = masterKey;
            settings["Caravan:BootstrapApiKey"] = Key;
            settings["Caravan:Files:Directory"] = Path.Combine(directory, "files");
            _servers.Add(await CaravanProcess.Server.StartAsync(settings, directory));
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers)
        {
            server.Dispose();
        }

        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }

    private string Key { get; set; } = string.Empty;

    [Fact]
    public async Task A_file_uploaded_through_one_replica_is_queried_through_the_other_and_a_replacement_through_the_other_is_seen_by_the_first()
    {
        using var first = _servers[0].Client(Key);
        using var second = _servers[1].Client(Key);
        var marker = Unique.Name("replica");

        var id = await first.UploadFilesAsync(("sales.csv", FileKit.Utf8($"region,amount,note\nnorth,10,{marker}-a\nsouth,32,{marker}-b\nnorth,5,{marker}-c\n")));
        Assert.Equal(3, Assert.Single(await second.ReadyFilesAsync(id))!["rows"]!.GetValue<long>());
        var answer = await second.QueryAsync(id, "SELECT region, sum(amount), string_agg(note, ',' ORDER BY note) FROM sales GROUP BY 1 ORDER BY 1", HttpStatusCode.OK);
        Assert.Equal($"""[["north",15,"{marker}-a,{marker}-c"],["south",32,"{marker}-b"]]""", answer["rows"]!.ToJsonString());
        var original = Assert.Single((await FileKit.StoredFileRowsAsync(_store!, id)).Files);

        // The second replica read the converted database from the bucket into its own folder.
        Assert.True(File.Exists(CachedDatabase(1, original)), "The second replica has no copy of the converted database.");

        using (var replacement = FileKit.Form(null, ("sales.csv", FileKit.Utf8($"region,amount,note\neast,100,{marker}-new\nwest,1,{marker}-new\n"))))
        {
            Assert.Equal(id, (await second.UploadAsync(replacement, FileKit.FilesUrl(id)).Expect(HttpStatusCode.OK))["id"]!.GetValue<long>());
        }

        var replaced = Assert.Single(await first.ReadyFilesAsync(id))!;
        Assert.Equal(2, replaced["rows"]!.GetValue<long>());
        var seen = await first.QueryAsync(id, "SELECT string_agg(region, ',' ORDER BY region), sum(amount), count(DISTINCT note) FROM sales", HttpStatusCode.OK);
        Assert.Equal("""[["east,west",101,1]]""", seen["rows"]!.ToJsonString());
        Assert.Equal("[[0]]", (await first.QueryAsync(id, $"SELECT count(*) FROM sales WHERE note = '{marker}-a'", HttpStatusCode.OK))["rows"]!.ToJsonString());
        Assert.Equal(seen["rows"]!.ToJsonString(), (await second.QueryAsync(id, "SELECT string_agg(region, ',' ORDER BY region), sum(amount), count(DISTINCT note) FROM sales", HttpStatusCode.OK))["rows"]!.ToJsonString());

        var current = Assert.Single((await FileKit.StoredFileRowsAsync(_store!, id)).Files);
        Assert.NotEqual(original, current);
        using var s3 = S3Kit.Client();
        Assert.Empty(await S3Kit.ListAsync(s3, $"files/{original}/"));
        Assert.Equal([$"files/{current}/data.duckdb"], await S3Kit.ListAsync(s3, $"files/{current}/"));

        await first.DeleteAsync(new Uri(SourceRoutes.Url(id), UriKind.Relative)).Expect(HttpStatusCode.NoContent);
        await second.QueryAsync(id, "SELECT 1", HttpStatusCode.NotFound);
        Assert.Empty(await S3Kit.ListAsync(s3, $"files/{current}/"));
        var (rows, keys) = await FileKit.StoredFileRowsAsync(_store!, id);
        Assert.Empty(rows);
        Assert.Equal(0, keys);
    }

    /// <summary>Where replica <paramref name="replica"/> keeps its copy of a file's converted database.</summary>
    private string CachedDatabase(int replica, string fileId) => Path.Combine(_directories[replica], "files", "cache", "files", fileId, "data.duckdb");
}
