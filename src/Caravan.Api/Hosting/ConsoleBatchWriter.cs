using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging.Console;

namespace Caravan.Api.Hosting;

/// <summary>
/// The queue between the threads that log and the one thread that writes console output. Loggers
/// enqueue finished text without taking a lock; the writer drains whatever has gathered and writes
/// it as UTF-8 with one write per stream. It is not woken per entry: after a write it pauses for
/// <see cref="BatchInterval"/>, and it sleeps without a timeout once a drain finds nothing.
/// </summary>
internal sealed class ConsoleBatchWriter : IDisposable
{
    /// <summary>
    /// Why 20 ms: short enough that a log line still appears at once to a person or a log collector,
    /// long enough that under load one wake-up and one write carry hundreds of entries instead of one.
    /// </summary>
    public static readonly TimeSpan BatchInterval = TimeSpan.FromMilliseconds(20);

    // A stop waits this long for the writer at most: a write blocked on a full pipe must not hang shutdown.
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(2);

    // The bytes one write carries at most, so a backlog does not grow one huge buffer; larger ones
    // are kept only until the next batch.
    private const int MaxBatchBytes = 1 << 20;

    // The built-in console logger's words, so whatever watches for them still finds them.
    private const string DroppedMessage =
        " message(s) dropped because of queue size limit. Increase the queue size or decrease logging verbosity to avoid this. "
        + "You may change `ConsoleLoggerQueueFullMode` to stop dropping messages.";

    // Another logger's count, taken back a moment later, can make the queue look full when it is
    // not; a waiter re-checks this often so no such moment can strand it.
    private static readonly TimeSpan RoomRecheck = TimeSpan.FromMilliseconds(50);

    private readonly ConcurrentQueue<Entry> _queue = new();
    private readonly ManualResetEventSlim _wake = new(initialState: false, spinCount: 0);
    private readonly Lock _writeLock = new();
    private readonly object _room = new();
    private readonly Stream _output;
    private readonly Stream _error;
    private readonly TimeSpan _batchInterval;
    private readonly Thread _thread;

    // Only touched under _writeLock.
    private ArrayBufferWriter<byte> _outputBytes = new();
    private ArrayBufferWriter<byte> _errorBytes = new();

    // Entries enqueued, or about to be, and not yet taken by a drain: the queue's length.
    private int _pending;
    private int _dropped;
    private int _idle;
    private int _stopping;
    private int _waitingForRoom;
    private int _wakeUps;
    private volatile Limits _limits = new(new ConsoleLoggerOptions().MaxQueueLength, ConsoleLoggerQueueFullMode.Wait);

    public ConsoleBatchWriter(Stream output, Stream error, TimeSpan batchInterval)
    {
        _output = output;
        _error = error;
        _batchInterval = batchInterval;
        _thread = new Thread(Run) { IsBackground = true, Name = "Console log writer" };
        _thread.Start();
    }

    /// <summary>How often the writer has woken up, for tests of its idleness.</summary>
    internal int WakeUps => Volatile.Read(ref _wakeUps);

    public void Configure(int maxQueueLength, ConsoleLoggerQueueFullMode fullMode)
    {
        _limits = new Limits(maxQueueLength, fullMode);
        WakeProducersWaitingForRoom();
    }

    /// <summary>
    /// Queues one entry. <paramref name="urgent"/> entries wake the writer at once; the others are
    /// written with the next batch. A full queue blocks or drops, as configured.
    /// </summary>
    public void Enqueue(string text, bool toError, bool urgent)
    {
        while (true)
        {
            var limits = _limits;
            var pending = Interlocked.Increment(ref _pending);
            if (Volatile.Read(ref _stopping) != 0)
            {
                Interlocked.Decrement(ref _pending);
                WriteNow(new Entry(text, toError));
                return;
            }

            if (pending <= limits.MaxQueueLength)
            {
                _queue.Enqueue(new Entry(text, toError));
                // The increment of _pending above is a full fence, so either this read sees the
                // writer idle or the writer's check of _pending sees this entry: no wake-up is lost.
                if (urgent || pending == limits.WakeAt || Volatile.Read(ref _idle) != 0)
                {
                    _wake.Set();
                }

                return;
            }

            Interlocked.Decrement(ref _pending);
            _wake.Set();
            if (limits.FullMode == ConsoleLoggerQueueFullMode.DropWrite)
            {
                Interlocked.Increment(ref _dropped);
                return;
            }

            WaitForRoom();
        }
    }

    /// <summary>Writes everything queued, then stops the writer (waiting for it a bounded time).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _stopping, 1) == 0)
        {
            _wake.Set();
            WakeProducersWaitingForRoom();
        }

        _thread.Join(StopTimeout);
    }

    private void Run()
    {
        while (true)
        {
            _wake.Reset();
            if (Volatile.Read(ref _stopping) != 0)
            {
                break;
            }

            if (WriteBatch())
            {
                _wake.Wait(_batchInterval);
            }
            else
            {
                Interlocked.Exchange(ref _idle, 1);
                if (Volatile.Read(ref _pending) == 0)
                {
                    _wake.Wait();
                }
                else
                {
                    // An entry is between its count and its enqueue: it lands in a moment.
                    Thread.Yield();
                }

                Volatile.Write(ref _idle, 0);
            }

            Interlocked.Increment(ref _wakeUps);
        }

        // Stopping: loggers that counted their entry before the flag still enqueue it; write until
        // none is left. Loggers that come after write their entry themselves (WriteNow).
        var clock = Stopwatch.StartNew();
        while (WriteBatch() || (Volatile.Read(ref _pending) > 0 && clock.Elapsed < StopTimeout))
        {
            Thread.Yield();
        }
    }

    private void WaitForRoom()
    {
        // Counting first (a full fence) pairs with the writer's decrement of _pending then read of
        // _waitingForRoom: either this thread sees the room, or the writer sees it waiting.
        Interlocked.Increment(ref _waitingForRoom);
        lock (_room)
        {
            while (Volatile.Read(ref _pending) >= _limits.MaxQueueLength && Volatile.Read(ref _stopping) == 0)
            {
                Monitor.Wait(_room, RoomRecheck);
            }
        }

        Interlocked.Decrement(ref _waitingForRoom);
    }

    private void WakeProducersWaitingForRoom()
    {
        if (Volatile.Read(ref _waitingForRoom) > 0)
        {
            lock (_room)
            {
                Monitor.PulseAll(_room);
            }
        }
    }

    // After the writer stopped: the entry goes out on the caller's thread, after whatever is still
    // queued, so each thread's entries stay in order.
    private void WriteNow(Entry entry)
    {
        lock (_writeLock)
        {
            WriteBatch();
            Append(entry.ToError ? _errorBytes : _outputBytes, entry.Text);
            Write(_output, ref _outputBytes);
            Write(_error, ref _errorBytes);
        }
    }

    /// <summary>Drains the queue into one write per stream; false when there was nothing to write.</summary>
    private bool WriteBatch()
    {
        lock (_writeLock)
        {
            var wrote = false;
            bool full;
            do
            {
                var dropped = Interlocked.Exchange(ref _dropped, 0);
                if (dropped > 0)
                {
                    Append(_errorBytes, dropped.ToString(CultureInfo.InvariantCulture) + DroppedMessage + Environment.NewLine);
                }

                var taken = 0;
                full = false;
                while (!full && _queue.TryDequeue(out var entry))
                {
                    Append(entry.ToError ? _errorBytes : _outputBytes, entry.Text);
                    taken++;
                    full = _outputBytes.WrittenCount >= MaxBatchBytes || _errorBytes.WrittenCount >= MaxBatchBytes;
                }

                if (taken > 0)
                {
                    Interlocked.Add(ref _pending, -taken);
                    WakeProducersWaitingForRoom();
                }

                wrote |= Write(_output, ref _outputBytes) | Write(_error, ref _errorBytes);
            }
            while (full);

            return wrote;
        }
    }

    private static void Append(ArrayBufferWriter<byte> bytes, string text)
    {
        var span = bytes.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        bytes.Advance(Encoding.UTF8.GetBytes(text, span));
    }

    private static bool Write(Stream stream, ref ArrayBufferWriter<byte> bytes)
    {
        if (bytes.WrittenCount == 0)
        {
            return false;
        }

        try
        {
            stream.Write(bytes.WrittenSpan);
            stream.Flush();
        }
        catch (Exception exception) when (exception is IOException or ObjectDisposedException or NotSupportedException)
        {
            // The console is gone (a closed pipe): there is nowhere left to say so. Dropping the
            // batch keeps the loggers from waiting for room that would never come.
        }

        if (bytes.Capacity > 2 * MaxBatchBytes)
        {
            bytes = new ArrayBufferWriter<byte>();
        }
        else
        {
            bytes.ResetWrittenCount();
        }

        return true;
    }

    private readonly record struct Entry(string Text, bool ToError);

    private sealed record Limits(int MaxQueueLength, ConsoleLoggerQueueFullMode FullMode)
    {
        // Past half the queue, the writer is woken rather than left to its pause, so it keeps ahead.
        public int WakeAt { get; } = Math.Max(1, MaxQueueLength / 2);
    }
}
