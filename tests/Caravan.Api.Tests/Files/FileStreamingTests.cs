using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Query;

namespace Caravan.Api.Tests.Files;

/// <summary>
/// Files stream through Caravan: a 2 GiB CSV uploads and converts with the service's memory flat,
/// a file over the limit is refused while it streams (the rest of the body is never written),
/// and a conversion cut short by a crash finishes after the restart. Each test runs Caravan as a
/// process of its own, so its memory and its death are its own.
/// </summary>
public sealed class FileStreamingTests
{
    private const long Gibibyte = 1L << 30;

    [Fact]
    public async Task A_2_GiB_CSV_uploads_and_converts_with_the_services_memory_under_300_MB()
    {
        var directory = CaravanApp.NewDataDirectory();
        var (settings, key) = Settings(directory);
        using var server = await CaravanProcess.Server.StartAsync(settings, directory);
        using var http = server.Client(key);
        http.Timeout = TimeSpan.FromMinutes(20);

        var rows = await UploadGeneratedAsync(http, 2 * Gibibyte, "big.csv");
        var id = rows.Id;
        await http.ReadyFilesAsync(id, TimeSpan.FromMinutes(15));
        var peak = server.PeakMemory;
        Assert.True(peak < 300L * 1024 * 1024, $"The service's peak memory was {peak / (1024 * 1024)} MB.");

        var answer = await http.QueryAsync(id, "SELECT count(*), sum(id) FROM big", HttpStatusCode.OK, timeoutMs: 120_000);
        Assert.Equal($"[[{rows.Count},{rows.Count * (rows.Count - 1) / 2}]]", answer["rows"]!.ToJsonString());
        await server.StopAsync();
    }

    [Fact]
    public async Task A_file_over_the_limit_is_refused_while_it_streams_and_nothing_is_kept()
    {
        var directory = CaravanApp.NewDataDirectory();
        var (settings, key) = Settings(directory);
        settings["Caravan:Files:MaxFileBytes"] = (4 << 20).ToString(CultureInfo.InvariantCulture);
        using var server = await CaravanProcess.Server.StartAsync(settings, directory);

        // 512 MiB offered over a raw connection: the answer must come long before the body is sent.
        const long offered = 512L << 20;
        var (status, body, sent) = await RawUploadAsync(server.Address, key, "huge.csv", offered);
        Assert.Equal(400, status);
        Assert.Contains("huge.csv is larger than the limit of 4194304 bytes", body, StringComparison.Ordinal);
        Assert.True(sent < offered / 4, $"The client could send {sent >> 20} MiB of {offered >> 20} MiB before the refusal.");

        using var http = server.Client(key);
        Assert.Equal(0, (await http.GetAsync(new Uri("/api/v1/sources/", UriKind.Relative)).Expect(HttpStatusCode.OK))["count"]!.GetValue<int>());
        var store = Path.Combine(directory, "files", "store");
        Assert.Empty(Directory.Exists(store) ? Directory.EnumerateFiles(store, "*", SearchOption.AllDirectories) : []);
        await server.StopAsync();
    }

    [Fact]
    public async Task A_conversion_cut_short_by_a_crash_finishes_after_the_restart()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "SIGKILL of a process: Unix only.");
        var directory = CaravanApp.NewDataDirectory();
        var (settings, key) = Settings(directory);
        long id;
        long count;
        using (var server = await CaravanProcess.Server.StartAsync(settings, directory))
        {
            using var http = server.Client(key);
            http.Timeout = TimeSpan.FromMinutes(5);
            (id, count) = await UploadGeneratedAsync(http, 300L << 20, "crash.csv");

            // Killed while the file waits or converts: the answer came, the conversion did not finish.
            var status = (await http.GetAsync(new Uri(SourceRoutes.Url(id, "config"), UriKind.Relative)).Expect(HttpStatusCode.OK))["config"]!["files"]![0]!["status"]!.GetValue<string>();
            using (var kill = Process.Start("kill", ["-KILL", server.ProcessId.ToString(CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(TestContext.Current.CancellationToken);
            }

            Assert.Equal("pending", status);
        }

        using (var restarted = await CaravanProcess.Server.StartAsync(settings, directory))
        {
            using var http = restarted.Client(key);
            await http.ReadyFilesAsync(id, TimeSpan.FromMinutes(5));
            var answer = await http.QueryAsync(id, "SELECT count(*) FROM crash", HttpStatusCode.OK, timeoutMs: 60_000);
            Assert.Equal($"[[{count}]]", answer["rows"]!.ToJsonString());
            Assert.True((await http.GetSourceAsync(id))["is_fully_configured"]!.GetValue<bool>());
            await restarted.StopAsync();
        }
    }

    internal static (Dictionary<string, string?> Settings, string Key) Settings(string directory)
    {
        var key = Unique.ApiKey();
        var settings = TestStore.NewStoreSettings(directory);
        settings["Caravan:BootstrapApiKey"] = key;
        settings["Caravan:Secrets:MasterKeyFile"] = Path.Combine(directory, "master.key");
        settings["Caravan:RateLimits:Enabled"] = "false";
        settings["Caravan:Files:Directory"] = Path.Combine(directory, "files");
        return (settings, key);
    }

    /// <summary>Uploads a CSV of about <paramref name="bytes"/> generated as it is sent (never held whole); its row count.</summary>
    internal static async Task<(long Id, long Count)> UploadGeneratedAsync(HttpClient http, long bytes, string name)
    {
        var csv = new GeneratedCsv(bytes);
        using var form = new MultipartFormDataContent();
        var part = new StreamContent(csv, 1 << 16);
        part.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        form.Add(part, "files", name);
        var answer = await http.UploadAsync(form).Expect(HttpStatusCode.OK);
        return (answer["id"]!.GetValue<long>(), csv.Rows);
    }

    /// <summary>Sends a multipart upload of <paramref name="bytes"/> over a socket, stopping when the answer arrives; the status, body and bytes sent.</summary>
    private static async Task<(int Status, string Body, long Sent)> RawUploadAsync(Uri address, string key, string name, long bytes)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(address.Host, address.Port);
        var stream = client.GetStream();
        const string boundary = "caravan-boundary";
        var head = Encoding.ASCII.GetBytes(
            $"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n");
        var tail = Encoding.ASCII.GetBytes($"\r\n--{boundary}--\r\n");
        var request = Encoding.ASCII.GetBytes(
            $"POST /api/v1/uploads/upload/ HTTP/1.1\r\nHost: {address.Authority}\r\nAuthorization: Bearer {key}\r\n"
            + $"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {head.Length + bytes + tail.Length}\r\n\r\n");
        await stream.WriteAsync(request);
        await stream.WriteAsync(head);

        var first = new TaskCompletionSource();
        var answer = ReadAnswerAsync(stream, first);
        var chunk = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("1234567,abcdefgh\n", 4096)));
        long sent = 0;
        try
        {
            while (sent < bytes && !first.Task.IsCompleted)
            {
                await stream.WriteAsync(chunk);
                sent += chunk.Length;
            }
        }
        catch (IOException)
        {
            // The server closed the connection after answering.
        }

        var (status, body) = await answer.WaitAsync(TimeSpan.FromSeconds(30));
        return (status, body, sent);
    }

    /// <summary>Reads the answer: done when its head has arrived and then its body (to the end of the connection or a short wait).</summary>
    private static async Task<(int Status, string Body)> ReadAnswerAsync(NetworkStream stream, TaskCompletionSource first)
    {
        var received = new MemoryStream();
        var buffer = new byte[8192];
        using var quiet = new CancellationTokenSource();
        var headed = false;
        while (true)
        {
            int read;
            try
            {
                read = await stream.ReadAsync(buffer, quiet.Token);
            }
            catch (Exception exception) when (exception is IOException or OperationCanceledException)
            {
                break;
            }

            if (read == 0)
            {
                first.TrySetResult();
                break;
            }

            received.Write(buffer, 0, read);
            first.TrySetResult();
            if (!headed && Encoding.UTF8.GetString(received.ToArray()).Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                // The head is here: the body follows at once; stop waiting for more a little later.
                headed = true;
                quiet.CancelAfter(TimeSpan.FromSeconds(1));
            }
        }

        var all = Encoding.UTF8.GetString(received.ToArray());
        var end = all.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return end > 0 ? (int.Parse(all.Split(' ')[1], CultureInfo.InvariantCulture), all[(end + 4)..]) : (0, all);
    }

    /// <summary>A CSV of ids and text made as it is read: <c>id,name,amount</c> rows up to about the size asked.</summary>
    private sealed class GeneratedCsv(long bytes) : Stream
    {
        private readonly byte[] _line = new byte[128];
        private int _lineLength;
        private int _lineOffset;
        private long _produced;
        private bool _header;

        public long Rows { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var written = 0;
            while (written < buffer.Length)
            {
                if (_lineOffset == _lineLength)
                {
                    if (_produced >= bytes)
                    {
                        break;
                    }

                    _lineLength = _header
                        ? Encoding.ASCII.GetBytes($"{Rows},customer number {Rows % 9973} of the region,{Rows % 1000}.25\n", _line)
                        : Encoding.ASCII.GetBytes("id,name,amount\n", _line);
                    Rows += _header ? 1 : 0;
                    _header = true;
                    _lineOffset = 0;
                    _produced += _lineLength;
                }

                var count = Math.Min(buffer.Length - written, _lineLength - _lineOffset);
                _line.AsSpan(_lineOffset, count).CopyTo(buffer[written..]);
                _lineOffset += count;
                written += count;
            }

            return written;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
