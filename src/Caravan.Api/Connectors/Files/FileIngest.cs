using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Caravan.Api.Data;
using Caravan.Api.Hosting;
using Caravan.Api.Sources;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// Converts stored files into queryable databases, after the upload was answered, as a durable
/// job: a pending file is claimed in the store for a short lease that the replica renews while it
/// works, so a job whose replica stopped (a restart, a crash) is taken over when its lease runs out
/// and done again from the stored upload. A converted file replaces the older files of its table
/// name; the upload is then deleted (its database holds the data). The same service erases what
/// deleted sources and abandoned uploads left, and answers the config readback's <c>files</c>.
/// </summary>
public sealed class FileIngest(
    Database database, FileCatalog catalog, IFileStore store, IOptions<FilesOptions> options, SourceWriter writer,
    TimeProvider time, ILogger<FileIngest> logger) : BackgroundService, ISourceHoldings
{
    /// <summary>How long a claim holds without renewal; renewed every third of it.</summary>
    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    /// <summary>An upload that never finished (its replica stopped) is erased after this long.</summary>
    public static readonly TimeSpan AbandonedAfter = TimeSpan.FromHours(24);

    private const int MaxAttempts = 3;

    private readonly string _replica = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
    private readonly SemaphoreSlim _wake = new(0, 1);

    public SourceType Type => SourceTypes.Get<FileType>();

    /// <summary>Starts the next conversion now rather than at the next poll (a file was just stored here).</summary>
    public void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already woken.
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var nextSweep = DateTimeOffset.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (time.GetUtcNow() >= nextSweep)
                {
                    await SweepAsync(stoppingToken);
                    nextSweep = time.GetUtcNow().AddMinutes(10);
                }

                while (await ClaimAsync(stoppingToken) is { } file)
                {
                    await ConvertAsync(file, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                logger.LogError(exception, "File conversion loop failed; retrying");
            }

            await _wake.WaitAsync(TimeSpan.FromSeconds(2), stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>The oldest pending file no live claim holds, claimed for this replica; null when there is none.</summary>
    private async Task<StoredFile?> ClaimAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await database.OpenAsync(cancellationToken);
        for (var tries = 0; tries < 5; tries++)
        {
            await using var reader = await connection.Command($"""
                SELECT {FileCatalog.Columns} FROM source_files
                WHERE status = @pending AND (claimed_until IS NULL OR claimed_until < @now)
                ORDER BY created_at, id LIMIT 1
                """).With("@pending", FileStatus.Pending).With("@now", now).ExecuteReaderAsync(cancellationToken);
            var found = (await FileCatalog.ReadAllAsync(reader, cancellationToken)).FirstOrDefault();
            await reader.DisposeAsync();
            if (found is null)
            {
                return null;
            }

            // Another replica may claim the same file at once: the update decides, the loser looks again.
            var claimed = await connection.Command("""
                UPDATE source_files SET claimed_by = @me, claimed_until = @until, attempts = attempts + 1
                WHERE id = @id AND status = @pending AND (claimed_until IS NULL OR claimed_until < @now)
                """).With("@me", _replica).With("@until", now + (long)Lease.TotalMilliseconds).With("@id", found.Id)
                .With("@pending", FileStatus.Pending).With("@now", now).ExecuteNonQueryAsync(cancellationToken);
            if (claimed == 1)
            {
                return found;
            }
        }

        return null;
    }

    private async Task ConvertAsync(StoredFile file, CancellationToken stoppingToken)
    {
        using var work = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var timeout = options.Value.ConversionTimeout;
        work.CancelAfter(timeout);
        var renewing = RenewAsync(file.Id, work);
        var folder = Path.GetFullPath(Path.Combine(options.Value.Directory, "work", file.Id));
        try
        {
            var key = await catalog.KeyAsync(file.SourceId!.Value, work.Token);
            if (key is null)
            {
                return; // The source was deleted: the sweep erases the file.
            }

            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }

            OwnerOnlyFiles.CreateFolder(Path.Combine(folder, "tmp"));
            var raw = await store.LocalCopyAsync(file.RawKey, work.Token);
            var rawKey = FileCrypto.DeriveKey(key, "raw", file.Id);
            var databasePath = Path.Combine(folder, "data.duckdb");
            IReadOnlyList<ConvertedTable> tables;
            try
            {
                tables = await FileConverter.ConvertAsync(
                    Enum.Parse<FileFormat>(file.Format, ignoreCase: true), file.FileName, file.Stem,
                    () => new DecryptingStream(new FileStream(raw, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16), rawKey),
                    databasePath, FileCrypto.DatabaseKey(key, file.Id), Path.Combine(folder, "tmp"), work.Token);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(rawKey);
            }

            if (await TakenNameAsync(file, tables, work.Token) is { } taken)
            {
                await FailAsync(file, taken, work.Token);
                return;
            }

            await using (var converted = new FileStream(databasePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
            {
                await store.PutAsync(file.DatabaseKey, converted, work.Token);
            }

            await FinishAsync(file, tables, work.Token);
        }
        catch (FileConversionException failure)
        {
            await FailAsync(file, failure.Message, stoppingToken);
        }
        catch (OperationCanceledException) when (work.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
        {
            // Not retried: the same file would take as long again.
            logger.LogWarning("Conversion of file {FileId} stopped after {Timeout}", file.Id, timeout);
            await FailAsync(file, string.Create(CultureInfo.InvariantCulture,
                $"{file.FileName}: the conversion took longer than Caravan__Files__ConversionTimeout ({timeout}) and was stopped."), stoppingToken);
        }
        catch (Exception exception) when (!stoppingToken.IsCancellationRequested)
        {
            logger.LogWarning("Conversion of file {FileId} failed with {Exception} (attempt of at most {Attempts})", file.Id, exception.GetType().Name, MaxAttempts);
            await RetryOrFailAsync(file, exception, stoppingToken);
        }
        finally
        {
            await work.CancelAsync();
            await renewing;
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    /// <summary>Keeps the claim alive while the conversion runs.</summary>
    private async Task RenewAsync(string fileId, CancellationTokenSource work)
    {
        try
        {
            while (!work.IsCancellationRequested)
            {
                await Task.Delay(Lease / 3, time, work.Token);
                await using var connection = await database.OpenAsync(work.Token);
                await connection.Command("UPDATE source_files SET claimed_until = @until WHERE id = @id AND claimed_by = @me")
                    .With("@until", time.GetUtcNow().ToUnixTimeMilliseconds() + (long)Lease.TotalMilliseconds).With("@id", fileId).With("@me", _replica)
                    .ExecuteNonQueryAsync(work.Token);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception exception)
        {
            logger.LogWarning("Could not renew the claim on file {FileId}: {Exception}", fileId, exception.GetType().Name);
        }
    }

    /// <summary>A table name the file would give that another file of the source already gives; a message, or null.</summary>
    private async Task<string?> TakenNameAsync(StoredFile file, IReadOnlyList<ConvertedTable> tables, CancellationToken cancellationToken)
    {
        var others = FileCatalog.Queryable(await catalog.ListAsync(file.SourceId!.Value, cancellationToken)).Where(f => f.Stem != file.Stem);
        foreach (var other in others)
        {
            var clash = other.Tables.Select(t => t.Name).Intersect(tables.Select(t => t.Name), StringComparer.Ordinal).FirstOrDefault();
            if (clash is not null)
            {
                return $"{file.FileName} gives a table named {clash}, which {other.FileName} already gives; rename one of the files.";
            }
        }

        return null;
    }

    private async Task FinishAsync(StoredFile file, IReadOnlyList<ConvertedTable> tables, CancellationToken cancellationToken)
    {
        var replaced = new List<string>();
        var kept = false;
        await writer.SetReadinessAsync(file.SourceId!.Value, async (connection, transaction, ct) =>
        {
            kept = await connection.Command("""
                UPDATE source_files SET status = @ready, tables = @tables, error = NULL, claimed_by = NULL, claimed_until = NULL, updated_at = @now
                WHERE id = @id AND claimed_by = @me
                """, transaction)
                .With("@ready", FileStatus.Ready).With("@tables", FileCatalog.WriteTables(tables.Select(t => new FileTable(t.Name, t.Rows))))
                .With("@now", time.GetUtcNow().ToUnixTimeMilliseconds()).With("@id", file.Id).With("@me", _replica)
                .ExecuteNonQueryAsync(ct) == 1;
            var files = await FileCatalog.ListAsync(connection, transaction, file.SourceId.Value, ct);

            // Older files of the same table name are replaced now that this one is ready.
            foreach (var older in files.Where(f => kept && f.Stem == file.Stem && f.Id != file.Id && f.CreatedAt <= file.CreatedAt
                && f.Status != FileStatus.Pending))
            {
                await connection.Command("DELETE FROM source_files WHERE id = @id", transaction).With("@id", older.Id).ExecuteNonQueryAsync(ct);
                replaced.Add(older.Id);
            }

            return files.Where(f => !replaced.Contains(f.Id)).All(f => f.Status == FileStatus.Ready || (f.Id == file.Id && kept));
        }, cancellationToken);

        foreach (var id in replaced)
        {
            await store.DeletePrefixAsync(StoredFile.Prefix(id), cancellationToken);
        }

        if (kept)
        {
            // The database holds the data now; the upload is not kept.
            await store.DeletePrefixAsync(file.RawKey, cancellationToken);
        }
        else
        {
            // The source was deleted (or the file erased) while it converted.
            await store.DeletePrefixAsync(StoredFile.Prefix(file.Id), cancellationToken);
        }
    }

    private async Task FailAsync(StoredFile file, string message, CancellationToken cancellationToken) =>
        await writer.SetReadinessAsync(file.SourceId!.Value, async (connection, transaction, ct) =>
        {
            await connection.Command("""
                UPDATE source_files SET status = @failed, error = @error, claimed_by = NULL, claimed_until = NULL, updated_at = @now
                WHERE id = @id AND claimed_by = @me
                """, transaction)
                .With("@failed", FileStatus.Failed).With("@error", message.Length > 1000 ? message[..1000] : message)
                .With("@now", time.GetUtcNow().ToUnixTimeMilliseconds()).With("@id", file.Id).With("@me", _replica).ExecuteNonQueryAsync(ct);
            return false;
        }, cancellationToken);

    private async Task RetryOrFailAsync(StoredFile file, Exception exception, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var attempts = Convert.ToInt32(await connection.Command("SELECT attempts FROM source_files WHERE id = @id").With("@id", file.Id)
            .ExecuteScalarAsync(cancellationToken) ?? MaxAttempts, System.Globalization.CultureInfo.InvariantCulture);
        if (attempts >= MaxAttempts)
        {
            await FailAsync(file, $"{file.FileName} could not be converted ({exception.GetType().Name}); upload it again.", cancellationToken);
            return;
        }

        // Released with a pause, so a passing problem (the object store away) is not retried at once.
        await connection.Command("UPDATE source_files SET claimed_by = NULL, claimed_until = @later WHERE id = @id AND claimed_by = @me")
            .With("@later", time.GetUtcNow().ToUnixTimeMilliseconds() + (long)Lease.TotalMilliseconds).With("@id", file.Id).With("@me", _replica)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Erases the files of deleted sources, their data keys, uploads abandoned midway, and this
    /// replica's copies of files that another replica replaced or deleted.
    /// </summary>
    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        // Listed before the files are read: a copy made since belongs to a file the read finds.
        var copies = store.LocalCopies(StoredFile.Folder);
        List<(string Id, long? SourceId)> gone = [];
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            await using var reader = await connection.Command("""
                SELECT f.id, f.source_id FROM source_files f LEFT JOIN sources s ON s.id = f.source_id
                WHERE (f.status = @uploading AND f.created_at < @abandoned) OR s.deleted_at IS NOT NULL
                """).With("@uploading", FileStatus.Uploading)
                .With("@abandoned", time.GetUtcNow().Subtract(AbandonedAfter).ToUnixTimeMilliseconds()).ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                gone.Add((reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetInt64(1)));
            }
        }

        foreach (var (id, _) in gone)
        {
            await store.DeletePrefixAsync(StoredFile.Prefix(id), cancellationToken);
            await using var connection = await database.OpenAsync(cancellationToken);
            await connection.Command("DELETE FROM source_files WHERE id = @id").With("@id", id).ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            await connection.Command("""
                DELETE FROM file_data_keys WHERE source_id IN (SELECT id FROM sources WHERE deleted_at IS NOT NULL)
                """).ExecuteNonQueryAsync(cancellationToken);
        }

        await DropOrphanedCopiesAsync(copies, cancellationToken);
    }

    /// <summary>
    /// The replica that replaces or deletes a file erases the objects and its own copies; a copy
    /// another replica downloaded (encrypted, under a key that may be gone too) would stay forever.
    /// </summary>
    private async Task DropOrphanedCopiesAsync(IReadOnlyList<string> copies, CancellationToken cancellationToken)
    {
        var copied = copies.Select(key => key.Split('/')[1]).ToHashSet(StringComparer.Ordinal);
        if (copied.Count == 0)
        {
            return;
        }

        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            await using var reader = await connection.Command("SELECT id FROM source_files").ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                copied.Remove(reader.GetString(0));
            }
        }

        foreach (var id in copied)
        {
            store.DropLocalCopies(StoredFile.Prefix(id));
        }
    }

    public async Task DescribeAsync(long sourceId, JsonObject config, CancellationToken cancellationToken)
    {
        var entries = new JsonArray();
        foreach (var file in await catalog.ListAsync(sourceId, cancellationToken))
        {
            JsonObject Entry(string table, long? rows) => new()
            {
                ["filename"] = file.FileName,
                ["table"] = table,
                ["bytes"] = file.Bytes,
                ["rows"] = rows,
                ["status"] = file.Status,
                ["error"] = file.Error,
            };

            // A workbook or SQLite file gives several tables: one entry each once converted.
            if (file.Tables.Count == 0)
            {
                entries.Add(Entry(file.Stem, null));
            }
            else
            {
                foreach (var table in file.Tables)
                {
                    entries.Add(Entry(table.Name, table.Rows));
                }
            }
        }

        config["files"] = entries;
    }

    /// <summary>Erases a deleted source's files from the store, their rows and its data key.</summary>
    public async Task EraseAsync(long sourceId, CancellationToken cancellationToken)
    {
        foreach (var id in await catalog.AllIdsAsync(sourceId, cancellationToken))
        {
            await store.DeletePrefixAsync(StoredFile.Prefix(id), cancellationToken);
        }

        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        await connection.Command("DELETE FROM source_files WHERE source_id = @source", transaction).With("@source", sourceId).ExecuteNonQueryAsync(cancellationToken);
        await catalog.EraseKeyAsync(connection, transaction, sourceId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    public override void Dispose()
    {
        _wake.Dispose();
        base.Dispose();
    }
}
