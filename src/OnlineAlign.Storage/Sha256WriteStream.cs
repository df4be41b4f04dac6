using System.Security.Cryptography;

namespace OnlineAlign.Storage;

/// <summary>
/// A write-only stream that passes every byte on to a file and hashes it on the way, so a download is verified
/// without reading the file back (a second pass over a gigabyte checkpoint). The blob client writes a
/// partitioned download to its destination in order, so what is hashed is the file's bytes in order.
/// </summary>
public sealed class Sha256WriteStream(Stream inner) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _written;

    /// <summary>The sha256 of everything written so far, in lower-case hex (the form manifests record).</summary>
    public string Sha256() => Convert.ToHexStringLower(_hash.GetCurrentHash());

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        _hash.AppendData(buffer);
        _written += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await inner.WriteAsync(buffer, cancellationToken);
        _hash.AppendData(buffer.Span);
        _written += buffer.Length;
    }

    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _written;

    public override long Position
    {
        get => _written;
        set => throw new NotSupportedException("a hashing stream is written once, in order");
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("a hashing stream is write-only");
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("a hashing stream is written once, in order");
    public override void SetLength(long value) => throw new NotSupportedException("a hashing stream is written once, in order");

    protected override void Dispose(bool disposing)
    {
        if (disposing) _hash.Dispose();
        base.Dispose(disposing);
    }
}
