using System.Runtime.InteropServices;

namespace Caravan.Api.Hosting;

/// <summary>
/// Every file Caravan writes holds secrets or users' data (the store, the master key, DuckDB's
/// spill files), so none is for other users of the machine. At start the process's umask gains
/// 077, so whatever is created afterwards, by Caravan or by a native library (SQLite's -wal,
/// -shm and journal, DuckDB's temporary files), is open to its owner only; the store's folder and
/// file and the key file are also created with explicit modes, which do not depend on the umask.
/// Windows has no such modes; its ACLs are left to the operator.
/// </summary>
public static class OwnerOnlyFiles
{
    public const UnixFileMode FolderMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public const UnixFileMode GroupOrOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>Adds 077 to the process's umask, keeping whatever else the operator's umask masks.</summary>
    public static void RestrictUmask()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        try
        {
            // umask(2) cannot fail; it only answers the mask it replaced, which is put back with 077 added.
            var previous = NativeMethods.umask((uint)GroupOrOther);
            _ = NativeMethods.umask(previous | (uint)GroupOrOther);
        }
        catch (Exception exception) when (exception is DllNotFoundException or EntryPointNotFoundException)
        {
            // A libc without umask: the explicit modes below still cover the store and the key.
        }
    }

    /// <summary>Creates a folder (and its missing parents) open to its owner only; an existing one is left as it is.</summary>
    public static void CreateFolder(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, FolderMode);
        }
    }

    /// <summary>Creates an empty file open to its owner only, unless it exists (then it is left as it is).</summary>
    public static void CreateEmptyFile(string path)
    {
        var options = new FileStreamOptions { Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.ReadWrite };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode;
        }

        try
        {
            using var created = new FileStream(path, options);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Already there (or created by another process an instant ago).
        }
    }

    /// <summary>Whether group or others have any permission on the file or folder (never on Windows).</summary>
    public static bool IsOpenToOthers(string path) =>
        !OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & GroupOrOther) != 0;

    private static class NativeMethods
    {
        [DllImport("libc", EntryPoint = "umask")]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern uint umask(uint mask);
    }
}
