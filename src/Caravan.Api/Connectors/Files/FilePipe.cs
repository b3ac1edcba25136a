using System.Runtime.InteropServices;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// A named pipe in the conversion's private folder through which DuckDB reads a text file's
/// plaintext, so that no plaintext copy of an upload ever reaches the disk. A background thread
/// copies the raw stream into the pipe through one fixed buffer; DuckDB reads the pipe as a
/// non-seekable file. Disposing it unblocks a writer still waiting for a reader (DuckDB failed or
/// was cancelled before opening the pipe) or for room in the pipe (DuckDB stopped reading), then
/// deletes the pipe.
/// </summary>
internal sealed class FilePipe : IDisposable
{
    /// <summary>The copy's one buffer: memory does not grow with the file.</summary>
    public const int BufferBytes = 1 << 16;

    private const int OpenReadOnly = 0;
    private const int OpenNonBlocking = 0x800;

    private readonly Task copy;
    private volatile bool released;

    private FilePipe(string path, Func<Stream> openRaw)
    {
        Path = path;
        copy = Task.Factory.StartNew(() => Copy(openRaw), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public string Path { get; }

    /// <summary>How many bytes went into the pipe.</summary>
    public long Written { get; private set; }

    public static FilePipe Create(string directory, Func<Stream> openRaw)
    {
        var path = System.IO.Path.Combine(directory, "pipe-" + Guid.NewGuid().ToString("N"));
        if (NativeMethods.mkfifo(NulTerminated(path), (uint)OwnerOnlyFilesMode) != 0)
        {
            throw new IOException($"Could not create a named pipe in the conversion folder (errno {Marshal.GetLastPInvokeError()}).");
        }

        return new FilePipe(path, openRaw);
    }

    private const int OwnerOnlyFilesMode = 0x180; // 0600

    /// <summary>
    /// Waits for the copy once DuckDB has read the pipe to its end, and rethrows what made the
    /// copy fail: a raw stream that broke off early must fail the conversion, not shorten the table.
    /// </summary>
    public void Complete()
    {
        Release();
        copy.GetAwaiter().GetResult();
    }

    public void Dispose()
    {
        Release();
        try
        {
            copy.GetAwaiter().GetResult();
        }
        catch (Exception exception) when (exception is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The reader went away first (DuckDB failed or was interrupted); its error is the one reported.
        }
        finally
        {
            File.Delete(Path);
        }
    }

    private void Copy(Func<Stream> openRaw)
    {
        if (released)
        {
            return;
        }

        using var raw = openRaw();
        using var pipe = new FileStream(Path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        if (released)
        {
            return;
        }

        var buffer = new byte[BufferBytes];
        int read;
        while ((read = raw.Read(buffer, 0, buffer.Length)) > 0)
        {
            pipe.Write(buffer, 0, read);
            Written += read;
        }
    }

    /// <summary>
    /// Opening the read end, even for an instant, lets a writer blocked in open(2) go on (it then
    /// sees <see cref="released"/> and stops); with no reader left a write fails with EPIPE. The
    /// read end is opened again until the copy has ended, so a writer that reaches open(2) late
    /// is released too.
    /// </summary>
    private void Release()
    {
        released = true;
        while (!copy.IsCompleted)
        {
            var fd = NativeMethods.open(NulTerminated(Path), OpenReadOnly | OpenNonBlocking);
            if (fd >= 0)
            {
                _ = NativeMethods.close(fd);
            }

            ((IAsyncResult)copy).AsyncWaitHandle.WaitOne(20);
        }
    }

    /// <summary>Paths go to libc as NUL-terminated UTF-8 bytes.</summary>
    private static byte[] NulTerminated(string path) => System.Text.Encoding.UTF8.GetBytes(path + "\0");

    private static class NativeMethods
    {
        [DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int mkfifo(byte[] path, uint mode);

        [DllImport("libc", EntryPoint = "open", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int open(byte[] path, int flags);

        [DllImport("libc", EntryPoint = "close", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int close(int fd);
    }
}
