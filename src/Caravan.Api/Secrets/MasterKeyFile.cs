using System.Security.Cryptography;
using System.Text;
using Caravan.Api.Hosting;

namespace Caravan.Api.Secrets;

/// <summary>
/// The master key file: one base64 key per line, oldest first, newest last; blank lines and lines
/// starting with <c>#</c> are ignored. Caravan only ever creates it with mode 0600.
/// </summary>
public static class MasterKeyFile
{
    private const string Header =
        "# Caravan master keys: one base64 key per line, oldest first, newest last.\n"
        + "# Back this file up: without it the stored secrets cannot be decrypted.\n";

    internal sealed record Contents(string Path, IReadOnlyList<MasterKey> Keys, bool Created, bool ModeTooOpen);

    /// <summary>
    /// Appends a freshly generated key as the newest line and returns its id. The file is replaced
    /// atomically by a 0600 copy, so an interruption leaves either the old ring or the new one.
    /// Not meant to run concurrently with itself on the same file.
    /// </summary>
    /// <exception cref="SecretsConfigurationException">The file is missing, unreadable, invalid or cannot be replaced.</exception>
    public static string AddNewKey(string path)
    {
        var fullPath = ResolvePath(path);
        if (!File.Exists(fullPath))
        {
            throw new SecretsConfigurationException(
                $"There is no master key file at '{fullPath}' to add a key to: check Caravan:Secrets:MasterKeyFile and the working directory.");
        }

        var text = ReadText(fullPath);

        // Never extend a ring that could not be loaded: the operator would only find out at the next start.
        var existing = Parse(fullPath, text);
        if (existing.Count == 0)
        {
            throw NoKey(fullPath);
        }

        MasterKey key;
        do
        {
            key = MasterKey.Generate();
        }
        while (existing.Any(k => k.KeyId == key.KeyId));

        var separator = text.Length == 0 || text.EndsWith('\n') ? string.Empty : "\n";
        var temporary = Path.Combine(Path.GetDirectoryName(fullPath)!, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            WriteNew(temporary, text + separator + key.ToBase64() + "\n");
            File.Move(temporary, fullPath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SecretsConfigurationException(
                $"The master key file '{fullPath}' could not be replaced ({e.Message}): make its directory writable by the user that runs Caravan. The file was left unchanged.", e);
        }
        finally
        {
            File.Delete(temporary);
        }

        return key.KeyId;
    }

    internal static Contents ReadOrCreate(string path)
    {
        var fullPath = ResolvePath(path);
        if (!File.Exists(fullPath))
        {
            var key = MasterKey.Generate();
            if (TryCreate(fullPath, Header + key.ToBase64() + "\n"))
            {
                return new Contents(fullPath, [key], Created: true, ModeTooOpen: false);
            }
        }

        var keys = Parse(fullPath, ReadNonEmptyText(fullPath));
        if (keys.Count == 0)
        {
            throw NoKey(fullPath);
        }

        return new Contents(fullPath, keys, Created: false, ModeTooOpen: IsModeTooOpen(fullPath));
    }

    // Another process may have created the file an instant ago and not yet written it: an empty file
    // gets a moment before it is reported as broken. The content goes in with one small write, so a
    // reader sees all of it or none.
    private static string ReadNonEmptyText(string fullPath)
    {
        var text = ReadText(fullPath);
        for (var attempt = 0; text.Length == 0 && attempt < 40; attempt++)
        {
            Thread.Sleep(50);
            text = ReadText(fullPath);
        }

        return text;
    }

    private static bool TryCreate(string fullPath, string content)
    {
        try
        {
            OwnerOnlyFiles.CreateFolder(Path.GetDirectoryName(fullPath)!);
            WriteNew(fullPath, content);
            return true;
        }
        catch (IOException) when (File.Exists(fullPath))
        {
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SecretsConfigurationException(
                $"The master key file '{fullPath}' does not exist and could not be created ({e.Message}): make its directory writable by the user that runs Caravan, "
                + "point Caravan:Secrets:MasterKeyFile elsewhere, or set Caravan:Secrets:MasterKey.", e);
        }
    }

    /// <summary>Creates the file exclusively with mode 0600 from the first moment, so it is never readable by others.</summary>
    private static void WriteNew(string fullPath, string content)
    {
        // FileShare.Read: an exclusive lock would make a concurrent reader fail instead of waiting,
        // and a reader that locks first between create and lock would make this creation fail.
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.Read };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnlyFiles.FileMode;
        }

        var bytes = Encoding.ASCII.GetBytes(content);
        try
        {
            using (var stream = new FileStream(fullPath, options))
            {
                try
                {
                    stream.Write(bytes);
                    stream.Flush(flushToDisk: true);
                }
                catch
                {
                    // We created the file, so a partial one is ours to remove; left behind it would be a broken ring.
                    stream.Dispose();
                    File.Delete(fullPath);
                    throw;
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    private static string ReadText(string fullPath)
    {
        try
        {
            return File.ReadAllText(fullPath, Encoding.ASCII);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SecretsConfigurationException(
                $"The master key file '{fullPath}' could not be read ({e.Message}): make it readable by the user that runs Caravan, or set Caravan:Secrets:MasterKey.", e);
        }
    }

    private static List<MasterKey> Parse(string fullPath, string text)
    {
        var keys = new List<MasterKey>();
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            if (!MasterKey.TryParse(line, out var key))
            {
                throw new SecretsConfigurationException(
                    $"Line {i + 1} of the master key file '{fullPath}' must be the base64 encoding of exactly 32 bytes: "
                    + "restore the file from a backup or correct that line (one key per line, oldest first; generate one with: openssl rand -base64 32).");
            }

            keys.Add(key);
        }

        return keys;
    }

    private static SecretsConfigurationException NoKey(string fullPath) => new(
        $"The master key file '{fullPath}' contains no key: restore it from a backup, or set Caravan:Secrets:MasterKey. "
        + "Deleting the file makes Caravan generate a new key, and secrets stored under the lost key stay unreadable.");

    private static bool IsModeTooOpen(string fullPath) => OwnerOnlyFiles.IsOpenToOthers(fullPath);

    private static string ResolvePath(string path) => Path.GetFullPath(path);
}
