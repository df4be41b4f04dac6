using System.Diagnostics;
using Microsoft.Extensions.Logging;
using OnlineAlign.Contracts;
using OnlineAlign.Storage;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// A trained checkpoint handed from the replica that wrote it to the others while it still uploads. Replica 0 trains alone
/// (full fine-tuning is not data-parallel by default), so without this every other replica's shard of the round's
/// evaluation waited for the whole upload and then downloaded the checkpoint again. Now such a replica copies the files
/// from replica 0's local folder, in pieces of at most <see cref="PieceBytes"/> (under Orleans' message limit), each file
/// hashed as written and checked against the manifest whose own hash names the checkpoint: it trusts the copy exactly as
/// far as a download. What it may do with it before the upload is durable is what a data-parallel replica may do with its
/// kept copy: evaluate (the round commits only once the upload is durable), never generate the next round.
/// </summary>
public sealed partial class PolicyWorkerGrain
{
    /// <summary>The largest piece of a checkpoint file one call carries.</summary>
    public const int PieceBytes = 4 << 20;

    public Task<byte[]?> UploadingManifest(BlobRef checkpoint) =>
        Task.FromResult(_uploads.TryGetValue(checkpoint.Sha256, out var pending) && !Failed(pending) ? pending.Plan.ManifestBytes : null);

    public async Task<byte[]> UploadingPiece(BlobRef checkpoint, string file, long offset, int count)
    {
        if (!_uploads.TryGetValue(checkpoint.Sha256, out var pending) || Failed(pending))
            throw new PhaseFailedException($"checkpoint {checkpoint.Path} is not uploading on this worker (its upload ended, or the worker restarted)");
        // Only the plan's own files, by exact name: nothing else in (or outside) the folder can be read through this.
        var entry = pending.Plan.Files.FirstOrDefault(f => Path.GetFileName(f.Path) == file)
            ?? throw new PhaseFailedException($"checkpoint {checkpoint.Path} has no file '{file}'");
        if (count < 1 || count > PieceBytes || offset < 0 || offset >= entry.Size)
            throw new PhaseFailedException($"a piece of {count} bytes at {offset} of '{file}' is outside its {entry.Size} bytes or over {PieceBytes} bytes");
        var piece = new byte[(int)Math.Min(count, entry.Size - offset)];
        using var handle = File.OpenHandle(Path.Combine(pending.Folder, file), FileMode.Open, FileAccess.Read, FileShare.Read);
        int read = 0;
        while (read < piece.Length && await RandomAccess.ReadAsync(handle, piece.AsMemory(read), offset + read) is var got and > 0) read += got;
        return read == piece.Length ? piece : piece[..read];
    }

    public async Task<Dictionary<string, double>?> ReceiveCheckpoint(BlobRef checkpoint, IPolicyWorkerGrain holder, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var pointer = Pointer(checkpoint);
        if (await holder.UploadingManifest(checkpoint) is not { } bytes) return null;
        var manifest = CheckpointStore.ParseManifest(pointer, bytes);
        long copied = await cache.ReceiveAsync(pointer, manifest, (file, offset, count) => holder.UploadingPiece(checkpoint, file, offset, count), PieceBytes, ct);
        log.LogInformation("worker {Key}: checkpoint {Sha256} copied from the replica that trained it, while it uploads: {Files} files, {Bytes} bytes in {Seconds:F2} s",
            this.GetPrimaryKeyString(), checkpoint.Sha256, manifest.Files.Count, copied, clock.Elapsed.TotalSeconds);
        return new() { ["checkpoint/copy_seconds"] = clock.Elapsed.TotalSeconds };
    }
}
