using System.Globalization;
using System.Net;
using System.Runtime.Versioning;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Hosting;

/// <summary>
/// What Caravan writes to disk is its owner's only, whatever umask it was started with: the data
/// folder 0700, the SQLite store and the files SQLite adds beside it (-wal, -shm) and the master key
/// 0600, and the process's umask masks group and others for what native libraries create.
/// </summary>
public sealed class FileModeTests
{
    private const UnixFileMode OwnerFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerFolder = OwnerFile | UnixFileMode.UserExecute;

    [Fact]
    [UnsupportedOSPlatform("windows")]
    public async Task A_first_start_with_the_defaults_creates_the_data_folder_0700_and_its_files_0600()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix file modes only.");

        // Issue #12: data/caravan.db and its -wal were 0644 in a 0755 folder. Started as a real
        // process under the common umask 022, in an empty folder, with the default data paths (on
        // the PostgreSQL run, the store is a database and the folder holds the key file alone).
        var directory = CaravanApp.NewDataDirectory();
        var key = Unique.ApiKey();
        var settings = TestStore.IsPostgres ? TestStore.NewStoreSettings(directory) : [];
        settings["Caravan:BootstrapApiKey"] = key;
        string[] files = TestStore.IsPostgres ? ["master.key"] : ["caravan.db", "caravan.db-shm", "caravan.db-wal", "master.key"];
        using (var server = await CaravanProcess.Server.StartAsync(settings, directory, umask: "022"))
        {
            using var http = server.Client(key);
            using var created = await http.PostJsonAsync("/api/v1/sources/", new JsonObject
            {
                ["type"] = "postgres", ["hostname"] = "db.example.com", ["username"] = "u", ["password"] = "file-mode-secret", ["database_name"] = "d",
            }.ToJsonString());
            Assert.Equal(HttpStatusCode.OK, created.StatusCode);

            var data = Path.Combine(directory, "data");
            Assert.Equal(OwnerFolder, File.GetUnixFileMode(data));
            Assert.Equal(files, Directory.GetFiles(data).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            Assert.All(Directory.GetFiles(data), file => Assert.True(File.GetUnixFileMode(file) == OwnerFile, $"{file}: {File.GetUnixFileMode(file)}"));
            Assert.Equal("0077", Umask(server.ProcessId));
        }
    }

    [Fact]
    [UnsupportedOSPlatform("windows")]
    public async Task A_store_and_key_in_folders_of_their_own_get_those_folders_0700()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix file modes only.");
        Assert.SkipWhen(TestStore.IsPostgres, "The SQLite store's files; the PostgreSQL store has none.");
        var directory = CaravanApp.NewDataDirectory();
        var store = Path.Combine(directory, "store", "nested", "caravan.db");
        var keyFile = Path.Combine(directory, "keys", "master.key");

        using (await CaravanProcess.Server.StartAsync(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Caravan"] = $"Data Source={store}",
            ["Caravan:Secrets:MasterKeyFile"] = keyFile,
        }, directory, umask: "022"))
        {
        }

        Assert.Equal(OwnerFolder, File.GetUnixFileMode(Path.Combine(directory, "store")));
        Assert.Equal(OwnerFolder, File.GetUnixFileMode(Path.GetDirectoryName(store)!));
        Assert.Equal(OwnerFolder, File.GetUnixFileMode(Path.GetDirectoryName(keyFile)!));
        Assert.Equal(OwnerFile, File.GetUnixFileMode(store));
        Assert.Equal(OwnerFile, File.GetUnixFileMode(keyFile));
    }

    /// <summary>The umask of a running process, as Linux reports it.</summary>
    private static string Umask(int processId)
    {
        var status = File.ReadAllLines($"/proc/{processId.ToString(CultureInfo.InvariantCulture)}/status");
        return status.Single(l => l.StartsWith("Umask:", StringComparison.Ordinal))["Umask:".Length..].Trim();
    }
}
