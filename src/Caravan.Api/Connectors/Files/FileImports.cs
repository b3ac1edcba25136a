using System.Data.Common;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Caravan.Api.Auth;
using Caravan.Api.Data;
using Caravan.Api.Hosting;
using Caravan.Api.Sources;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// Takes in the files of one request — a new FILE source's, or more for an existing one — as they
/// stream: each is recognised by its first bytes, encrypted and written to the store as it
/// arrives, within the size and count limits. Only when every file is stored does one transaction
/// make them part of the source (creating it, for a new one) and hand them to conversion; a
/// refused request leaves nothing behind.
/// </summary>
public sealed class FileImports(
    Database database, FileCatalog catalog, IFileStore store, IOptions<FilesOptions> options, SourceWriter writer, FileIngest ingest, TimeProvider time)
{
    public FilesOptions Options => options.Value;

    private Database Database { get; } = database;

    private FileCatalog Catalog { get; } = catalog;

    private IFileStore Store { get; } = store;

    private SourceWriter Writer { get; } = writer;

    private FileIngest Ingest { get; } = ingest;

    private TimeProvider Time { get; } = time;

    /// <summary>Starts a request's files for a new source.</summary>
    public FileBatch ForNewSource(Caller caller) => new(this, caller, null, RandomNumberGenerator.GetBytes(FileCatalog.KeySize), new HashSet<string>());

    /// <summary>Starts a request's files for an existing FILE source of the caller's organization; null when there is none.</summary>
    public async Task<FileBatch?> ForSourceAsync(Caller caller, long sourceId, CancellationToken cancellationToken)
    {
        if (caller.Token?.Sees(sourceId) == false)
        {
            return null;
        }

        await using var connection = await Database.OpenAsync(cancellationToken);
        var type = await connection.Command("SELECT type FROM sources WHERE id = @id AND organization_id = @org AND deleted_at IS NULL")
            .With("@id", sourceId).With("@org", caller.OrganizationId).ExecuteScalarAsync(cancellationToken) as string;
        if (SourceTypes.Find(type) is not FileType)
        {
            return null;
        }

        var key = await Catalog.KeyAsync(sourceId, cancellationToken);
        var stems = (await FileCatalog.ListAsync(connection, null, sourceId, cancellationToken)).Select(f => f.Stem).ToHashSet(StringComparer.Ordinal);
        return key is null ? null : new FileBatch(this, caller, sourceId, key, stems);
    }

    /// <summary>One request's files, stored as they arrive; <see cref="CommitAsync"/> makes them the source's, disposing without it removes them.</summary>
    public sealed class FileBatch(FileImports imports, Caller caller, long? sourceId, byte[] key, IReadOnlySet<string> existingStems) : IAsyncDisposable
    {
        private readonly List<StoredFile> _files = [];
        private readonly HashSet<string> _stems = new(StringComparer.Ordinal);
        private bool _committed;

        public ValidationErrors Errors { get; } = new();

        public IReadOnlyList<StoredFile> Files => _files;

        /// <summary>
        /// Stores one file from <paramref name="content"/>, reporting a refusal under
        /// <paramref name="errorKey"/>; false when the file was refused (the rest of the request is then not worth reading).
        /// </summary>
        public async Task<bool> AddAsync(string? fileName, Stream content, string errorKey, CancellationToken cancellationToken)
        {
            var limits = imports.Options;
            if (FileNames.Clean(fileName) is not { } name)
            {
                Errors.Add(errorKey, "Each file needs a name, such as sales.csv (at most 255 characters, no control characters).");
                return false;
            }

            var stem = FileFormats.TableStem(name);
            var files = existingStems.Union(_stems, StringComparer.Ordinal).Count() + (existingStems.Contains(stem) ? 0 : 1);
            if (files > limits.MaxFilesPerSource)
            {
                Errors.Add(errorKey, $"{name}: a FILE source holds at most {limits.MaxFilesPerSource} files (Caravan__Files__MaxFilesPerSource).");
                return false;
            }

            var head = new byte[FileFormats.HeadBytes];
            var headLength = await content.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken);
            if (FileFormats.Detect(name, head.AsSpan(0, headLength)) is not { } format)
            {
                Errors.Add(errorKey, $"{name}: not a file Caravan can read. Send CSV, TSV, Parquet, JSON or NDJSON, Excel (.xlsx, .xls) or SQLite (.sqlite, .sqlite3, .db) files.");
                return false;
            }

            // Two files of one request with the same table name are both kept; a file named like one
            // the source holds replaces it (once converted).
            for (var n = 2; _stems.Contains(stem); n++)
            {
                stem = FileFormats.TableStem(name) + "_" + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            var file = new StoredFile(FileCatalog.NewFileId(), sourceId, caller.OrganizationId, name, stem, format.ToString().ToLowerInvariant(), 0,
                FileStatus.Uploading, null, [], imports.Time.GetUtcNow().ToUnixTimeMilliseconds());
            await using (var connection = await imports.Database.OpenAsync(cancellationToken))
            {
                await FileCatalog.InsertAsync(connection, file, cancellationToken);
            }

            _files.Add(file);
            _stems.Add(stem);
            var rawKey = FileCrypto.DeriveKey(key, "raw", file.Id);
            try
            {
                await using var plaintext = new PrefixedStream(head, headLength, content);
                await using var encrypting = new EncryptingStream(plaintext, rawKey, limits.MaxFileBytes);
                await imports.Store.PutAsync(file.RawKey, encrypting, cancellationToken);
                _files[^1] = file with { Bytes = encrypting.PlaintextBytes };
                return true;
            }
            catch (FileTooLargeException tooLarge)
            {
                Errors.Add(errorKey, $"{name} is larger than the limit of {tooLarge.Limit} bytes (Caravan__Files__MaxFileBytes).");
                return false;
            }
            finally
            {
                CryptographicOperations.ZeroMemory(rawKey);
            }
        }

        /// <summary>
        /// Makes the stored files the source's in one transaction (creating a new source named
        /// <paramref name="accountName"/>) and queues their conversion. Null when an existing source
        /// is gone; the created or changed source otherwise.
        /// </summary>
        public async Task<SourceRow?> CommitAsync(string? accountName, CancellationToken cancellationToken)
        {
            var type = SourceTypes.Get<FileType>();
            async Task Attach(DbConnection connection, DbTransaction transaction, long id, CancellationToken ct)
            {
                foreach (var file in _files)
                {
                    await connection.Command("""
                        UPDATE source_files SET source_id = @source, status = @pending, bytes = @bytes, updated_at = @now WHERE id = @id
                        """, transaction)
                        .With("@source", id).With("@pending", FileStatus.Pending).With("@bytes", file.Bytes)
                        .With("@now", imports.Time.GetUtcNow().ToUnixTimeMilliseconds()).With("@id", file.Id).ExecuteNonQueryAsync(ct);
                }
            }

            SourceRow? row;
            if (sourceId is null)
            {
                var created = await imports.Writer.CreateAsync(
                    caller, type, accountName ?? DefaultName(), new SourceChange(ChangeMode.Create), null, null, cancellationToken,
                    async (connection, transaction, id, ct) =>
                    {
                        await imports.Catalog.StoreKeyAsync(connection, transaction, id, key, ct);
                        await Attach(connection, transaction, id, ct);
                    });
                row = created?.Row;
            }
            else
            {
                var outcome = await imports.Writer.WriteAlongsideAsync(
                    caller, sourceId.Value,
                    stored => SourceTypes.Find(stored.Type) is FileType
                        ? new JsonObject { ["files"] = new JsonObject { ["added"] = new JsonArray([.. _files.Select(f => JsonValue.Create(f.FileName))]) } }
                        : null,
                    (connection, transaction, stored, ct) => Attach(connection, transaction, stored.Id, ct),
                    cancellationToken);
                row = outcome.Row;
            }

            if (row is not null)
            {
                _committed = true;
                imports.Ingest.Wake();
            }

            return row;
        }

        /// <summary>The default name of a new source: its first file's name, as camelAI names one.</summary>
        private string DefaultName() => _files.Count > 0 ? _files[0].FileName : SourceTypes.Get<FileType>().DisplayName;

        /// <summary>Without a commit, every object and row of the request goes.</summary>
        public async ValueTask DisposeAsync()
        {
            if (_committed)
            {
                return;
            }

            foreach (var file in _files)
            {
                await imports.Store.DeletePrefixAsync(StoredFile.Prefix(file.Id), CancellationToken.None);
                await using var connection = await imports.Database.OpenAsync(CancellationToken.None);
                await connection.Command("DELETE FROM source_files WHERE id = @id AND status = @uploading")
                    .With("@id", file.Id).With("@uploading", FileStatus.Uploading).ExecuteNonQueryAsync(CancellationToken.None);
            }

            if (sourceId is null)
            {
                CryptographicOperations.ZeroMemory(key);
            }
        }
    }
}

/// <summary>A file's name as Caravan keeps it: the last part of the name a client sent, trimmed.</summary>
public static class FileNames
{
    public const int MaxLength = 255;

    public static string? Clean(string? name)
    {
        var last = (name ?? string.Empty).Replace('\\', '/').Split('/')[^1].Trim().Trim('"');
        return last.Length is 0 or > MaxLength || last.Any(char.IsControl) || last is "." or ".." ? null : last;
    }
}

/// <summary>Bytes already read from a stream, then the rest of it.</summary>
internal sealed class PrefixedStream(byte[] prefix, int prefixLength, Stream rest) : ForwardStream
{
    private int _offset;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_offset < prefixLength)
        {
            var count = Math.Min(buffer.Length, prefixLength - _offset);
            prefix.AsSpan(_offset, count).CopyTo(buffer.Span);
            _offset += count;
            return ValueTask.FromResult(count);
        }

        return rest.ReadAsync(buffer, cancellationToken);
    }
}
