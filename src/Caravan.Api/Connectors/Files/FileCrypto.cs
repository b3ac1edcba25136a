using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// How Caravan encrypts an uploaded file as it arrives: AES-256-GCM in chunks of 64 KiB under a key
/// of that file alone (derived from its source's data key and the file's id), each chunk's nonce its
/// number, the last chunk marked in its associated data so a shortened object fails to decrypt. A
/// key is used for one object only, so counting nonces never repeat. The plaintext is never held
/// whole: one chunk at a time on the way in (<see cref="EncryptingStream"/>) and on the way out
/// (<see cref="DecryptingStream"/>, which can seek, for readers that need random access).
/// </summary>
public static class FileCrypto
{
    public const int ChunkSize = 64 * 1024;
    public const int TagSize = 16;

    /// <summary>"CRVF" and the format's version.</summary>
    internal static ReadOnlySpan<byte> Header => "CRVF\u0001\0\0\0"u8;

    internal const int HeaderSize = 8;

    /// <summary>The key of one purpose (<c>raw</c>, <c>duckdb</c>) for one file, from its source's data key.</summary>
    public static byte[] DeriveKey(ReadOnlySpan<byte> sourceKey, string purpose, string fileId)
    {
        var key = new byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, sourceKey, key, [], Encoding.UTF8.GetBytes($"caravan:file:{purpose}:{fileId}"));
        return key;
    }

    /// <summary>The key DuckDB encrypts a file's converted database with (it takes text: base64 of 32 random-derived bytes).</summary>
    public static string DatabaseKey(ReadOnlySpan<byte> sourceKey, string fileId)
    {
        var key = DeriveKey(sourceKey, "duckdb", fileId);
        try
        {
            return Convert.ToBase64String(key);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    internal static void Nonce(Span<byte> nonce, long chunk)
    {
        nonce.Clear();
        BinaryPrimitives.WriteInt64BigEndian(nonce[4..], chunk);
    }

    internal static ReadOnlySpan<byte> Final(bool last) => last ? [1] : [0];
}

/// <summary>The file was larger than <c>Caravan__Files__MaxFileBytes</c>; noticed while it streamed.</summary>
public sealed class FileTooLargeException(long limit)
    : IOException($"The file is larger than the limit of {limit} bytes (Caravan__Files__MaxFileBytes).")
{
    public long Limit => limit;
}

/// <summary>
/// Reads a plaintext stream and gives its encrypted form (<see cref="FileCrypto"/>), counting the
/// plaintext against a limit as it arrives; past the limit a read throws <see cref="FileTooLargeException"/>.
/// Holds two chunks: the one being handed out and the next, read ahead to know which chunk is last.
/// </summary>
public sealed class EncryptingStream : ForwardStream
{
    private readonly Stream _plaintext;
    private readonly AesGcm _aes;
    private readonly long _limit;
    private byte[] _current = new byte[FileCrypto.ChunkSize];
    private byte[] _next = new byte[FileCrypto.ChunkSize];
    private int _nextLength = -1;
    private readonly byte[] _sealed = new byte[FileCrypto.ChunkSize + FileCrypto.TagSize];
    private int _sealedLength;
    private int _sealedOffset;
    private long _chunk;
    private bool _finished;
    private bool _headerSent;

    public EncryptingStream(Stream plaintext, byte[] key, long limit)
    {
        _plaintext = plaintext;
        _aes = new AesGcm(key, FileCrypto.TagSize);
        _limit = limit;
    }

    /// <summary>Plaintext bytes read so far.</summary>
    public long PlaintextBytes { get; private set; }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0)
        {
            return 0;
        }

        if (!_headerSent)
        {
            _headerSent = true;
            FileCrypto.Header.CopyTo(_sealed);
            _sealedLength = FileCrypto.HeaderSize;
            _sealedOffset = 0;
        }

        if (_sealedOffset == _sealedLength && !_finished)
        {
            await SealNextAsync(cancellationToken);
        }

        var count = Math.Min(buffer.Length, _sealedLength - _sealedOffset);
        _sealed.AsSpan(_sealedOffset, count).CopyTo(buffer.Span);
        _sealedOffset += count;
        return count;
    }

    private async Task SealNextAsync(CancellationToken cancellationToken)
    {
        int length;
        if (_nextLength < 0)
        {
            length = await FillAsync(_current, cancellationToken);
        }
        else
        {
            (_current, _next) = (_next, _current);
            length = _nextLength;
        }

        // The chunk is the last when the stream ended inside it, or when nothing follows it.
        _nextLength = length == FileCrypto.ChunkSize ? await FillAsync(_next, cancellationToken) : 0;
        var last = _nextLength == 0;
        Span<byte> nonce = stackalloc byte[12];
        FileCrypto.Nonce(nonce, _chunk++);
        _aes.Encrypt(nonce, _current.AsSpan(0, length), _sealed.AsSpan(0, length), _sealed.AsSpan(length, FileCrypto.TagSize), FileCrypto.Final(last));
        _sealedLength = length + FileCrypto.TagSize;
        _sealedOffset = 0;
        _finished = last;
    }

    private async Task<int> FillAsync(byte[] chunk, CancellationToken cancellationToken)
    {
        var filled = 0;
        while (filled < chunk.Length)
        {
            var read = await _plaintext.ReadAsync(chunk.AsMemory(filled), cancellationToken);
            if (read == 0)
            {
                break;
            }

            filled += read;
            PlaintextBytes += read;
            if (PlaintextBytes > _limit)
            {
                throw new FileTooLargeException(_limit);
            }
        }

        return filled;
    }


    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _aes.Dispose();
            CryptographicOperations.ZeroMemory(_current);
            CryptographicOperations.ZeroMemory(_next);
        }

        base.Dispose(disposing);
    }
}

/// <summary>
/// The plaintext of an object written by <see cref="EncryptingStream"/>, read from a seekable
/// ciphertext stream one chunk at a time; seeking decrypts the chunk it lands in. A chunk that
/// fails to authenticate (a wrong key, a changed or shortened object) throws <see cref="CryptographicException"/>.
/// </summary>
public sealed class DecryptingStream : Stream
{
    private readonly Stream _ciphertext;
    private readonly AesGcm _aes;
    private readonly long _chunks;
    private readonly byte[] _sealed = new byte[FileCrypto.ChunkSize + FileCrypto.TagSize];
    private readonly byte[] _plain = new byte[FileCrypto.ChunkSize];
    private long _loaded = -1;
    private int _loadedLength;
    private long _position;

    public DecryptingStream(Stream ciphertext, byte[] key)
    {
        _ciphertext = ciphertext;
        _aes = new AesGcm(key, FileCrypto.TagSize);
        var body = ciphertext.Length - FileCrypto.HeaderSize;
        Span<byte> header = stackalloc byte[FileCrypto.HeaderSize];
        ciphertext.Position = 0;
        if (body < FileCrypto.TagSize || ciphertext.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) != header.Length
            || !header.SequenceEqual(FileCrypto.Header))
        {
            throw new CryptographicException("Not a file encrypted by Caravan.");
        }

        const int sealedChunk = FileCrypto.ChunkSize + FileCrypto.TagSize;
        _chunks = (body + sealedChunk - 1) / sealedChunk;
        var lastSealed = body - (_chunks - 1) * sealedChunk;
        if (lastSealed < FileCrypto.TagSize)
        {
            throw new CryptographicException("The encrypted file is cut short.");
        }

        Length = (_chunks - 1) * FileCrypto.ChunkSize + (lastSealed - FileCrypto.TagSize);
    }

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length { get; }

    public override long Position
    {
        get => _position;
        set => _position = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value));
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_position >= Length || buffer.Length == 0)
        {
            return 0;
        }

        var chunk = _position / FileCrypto.ChunkSize;
        Load(chunk);
        var within = (int)(_position - chunk * FileCrypto.ChunkSize);
        var count = Math.Min(buffer.Length, _loadedLength - within);
        _plain.AsSpan(within, count).CopyTo(buffer);
        _position += count;
        return count;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    private void Load(long chunk)
    {
        if (_loaded == chunk)
        {
            return;
        }

        const int sealedChunk = FileCrypto.ChunkSize + FileCrypto.TagSize;
        var last = chunk == _chunks - 1;
        var length = last ? (int)(Length - chunk * FileCrypto.ChunkSize) : FileCrypto.ChunkSize;
        _ciphertext.Position = FileCrypto.HeaderSize + chunk * sealedChunk;
        _ciphertext.ReadExactly(_sealed, 0, length + FileCrypto.TagSize);
        Span<byte> nonce = stackalloc byte[12];
        FileCrypto.Nonce(nonce, chunk);
        _loaded = -1;
        _aes.Decrypt(nonce, _sealed.AsSpan(0, length), _sealed.AsSpan(length, FileCrypto.TagSize), _plain.AsSpan(0, length), FileCrypto.Final(last));
        _loaded = chunk;
        _loadedLength = length;
    }

    public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => _position + offset,
        _ => Length + offset,
    };

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _aes.Dispose();
            _ciphertext.Dispose();
            CryptographicOperations.ZeroMemory(_plain);
        }

        base.Dispose(disposing);
    }
}
