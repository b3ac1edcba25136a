using System.Text;
using Caravan.Api.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Tests.Hosting;

/// <summary>
/// A <see cref="BatchedConsoleLoggerProvider"/> writing into memory, with the options and formatters
/// the app registers (simple, one line an entry, no colours, unless <c>configure</c> says otherwise).
/// </summary>
internal sealed class ConsoleLogRig : IDisposable
{
    private readonly ServiceProvider _services;

    public ConsoleLogRig(Action<ILoggingBuilder>? configure = null, TimeSpan? batchInterval = null, RecordingStream? output = null)
    {
        _services = new ServiceCollection().AddLogging(logging =>
        {
            logging.AddBatchedConsole();
            logging.Services.Configure<SimpleConsoleFormatterOptions>(simple =>
            {
                simple.SingleLine = true;
                simple.ColorBehavior = LoggerColorBehavior.Disabled;
            });
            configure?.Invoke(logging);
        }).BuildServiceProvider();
        Output = output ?? new RecordingStream();
        Provider = new BatchedConsoleLoggerProvider(
            _services.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>(),
            _services.GetServices<ConsoleFormatter>(),
            Output,
            Error,
            batchInterval ?? ConsoleBatchWriter.BatchInterval);
        Logger = Provider.CreateLogger("Test");
    }

    public RecordingStream Output { get; }

    public RecordingStream Error { get; } = new();

    public BatchedConsoleLoggerProvider Provider { get; }

    public ILogger Logger { get; }

    /// <summary>A rig with a queue of <paramref name="maxQueueLength"/> whose writer is held in its write of "entry 0".</summary>
    public static ConsoleLogRig HeldInAWrite(int maxQueueLength, ConsoleLoggerQueueFullMode fullMode)
    {
        var output = new RecordingStream();
        output.Hold();
        var rig = new ConsoleLogRig(
            logging => logging.Services.Configure<ConsoleLoggerOptions>(o => (o.MaxQueueLength, o.QueueFullMode) = (maxQueueLength, fullMode)),
            output: output);
        rig.Logger.LogInformation("entry 0");
        Assert.True(output.WriteStarted.Wait(TimeSpan.FromSeconds(10)), "The writer did not start writing.");
        return rig;
    }

    /// <summary>The messages of simple one-line entries (<c>info: Test[0] message</c>), in order.</summary>
    public static IReadOnlyList<string> Messages(RecordingStream stream) =>
        [.. stream.Lines.Select(line => line[(line.IndexOf("] ", StringComparison.Ordinal) + 2)..])];

    public void Dispose()
    {
        Provider.Dispose();
        _services.Dispose();
    }
}

/// <summary>An output stream in memory that counts its writes; it can hold writes until released, or fail them.</summary>
internal sealed class RecordingStream : Stream
{
    private readonly MemoryStream _bytes = new();
    private readonly ManualResetEventSlim _open = new(initialState: true);
    private int _writes;

    /// <summary>Every write throws, as one to a closed pipe does.</summary>
    public bool Failing { get; init; }

    /// <summary>Set once a write has begun, even one that is being held.</summary>
    public ManualResetEventSlim WriteStarted { get; } = new();

    public int Writes => Volatile.Read(ref _writes);

    public string Text
    {
        get
        {
            lock (_bytes)
            {
                return Encoding.UTF8.GetString(_bytes.GetBuffer(), 0, (int)_bytes.Length);
            }
        }
    }

    public string[] Lines => Text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public void Hold() => _open.Reset();

    public void Release() => _open.Set();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Interlocked.Increment(ref _writes);
        WriteStarted.Set();
        _open.Wait();
        if (Failing)
        {
            throw new IOException("Broken pipe");
        }

        lock (_bytes)
        {
            _bytes.Write(buffer);
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _open.Dispose();
            WriteStarted.Dispose();
            _bytes.Dispose();
        }

        base.Dispose(disposing);
    }
}
