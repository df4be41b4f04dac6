using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using Grpc.Core;
using OnlineAlign.Storage;
using V1 = OnlineAlign.Api.V1;

namespace OnlineAlign.Silo.Api;

/// <summary>
/// Sends a checkpoint's files from blob storage to a gRPC caller in chunks, checking each file's sha256 as it
/// goes: the silo never writes an export to its own disk, and a corrupt blob ends the stream with DATA_LOSS
/// before its last chunk, so a client never completes a file whose hash is wrong.
/// </summary>
[SuppressMessage("Naming", "CA1711", Justification = "named for the gRPC stream it writes; not a System.IO.Stream")]
public static class PolicyStream
{
    public const int ChunkBytes = 1 << 20;

    public static async Task WriteAsync(CheckpointStore store, BlobPointer manifestPointer, IServerStreamWriter<V1.PolicyChunk> output, CancellationToken ct)
    {
        var manifest = await store.ReadManifestAsync(manifestPointer, ct);
        var buffer = new byte[ChunkBytes];
        foreach (var entry in manifest.Files)
        {
            string name = Path.GetFileName(entry.Path);
            await using var input = await store.OpenReadAsync(entry, ct);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long offset = 0;
            // A chunk is sent once the next one has been read, so the last chunk goes out only after the whole
            // file's hash is known to match.
            int held = await ReadFull(input, buffer, ct);
            while (true)
            {
                var chunk = new V1.PolicyChunk { File = name, Offset = offset, Size = entry.Size, Sha256 = entry.Sha256,
                    Data = Google.Protobuf.ByteString.CopyFrom(buffer, 0, held) };
                hash.AppendData(buffer, 0, held);
                offset += held;
                held = await ReadFull(input, buffer, ct);
                if (held == 0)
                {
                    string actual = Convert.ToHexStringLower(hash.GetHashAndReset());
                    if (actual != entry.Sha256) throw new CorruptBlobException(entry.Path, entry.Sha256, actual);
                    chunk.Last = true;
                    await output.WriteAsync(chunk, ct);
                    break;
                }
                await output.WriteAsync(chunk, ct);
            }
        }
    }

    private static async Task<int> ReadFull(Stream input, byte[] buffer, CancellationToken ct)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int read = await input.ReadAsync(buffer.AsMemory(total), ct);
            if (read == 0) break;
            total += read;
        }
        return total;
    }
}
