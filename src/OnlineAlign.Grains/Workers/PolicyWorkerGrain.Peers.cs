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
/// kept copy: evaluate its shard of the round (which commits only once the upload is durable), and generate its shard of the
/// next round early, storing nothing before replica 0 says the upload is durable (<see cref="KeptDurable"/>).
/// </summary>
public sealed partial class PolicyWorkerGrain
{
    /// <summary>
    /// Checkpoints copied here from the trainer, by manifest hash, until seen durable: each pinned in the cache meanwhile (its
    /// folder evicted, a phase here would read storage, where the checkpoint is not whole yet).
    /// </summary>
    private readonly Dictionary<string, (BlobRef Checkpoint, IDisposable Pin)> _copied = new(StringComparer.Ordinal);

    /// <summary>Forgets a copy (seen durable, or its upload failed or was lost) and lets the cache evict it.</summary>
    private void Uncopy(string sha256)
    {
        if (_copied.Remove(sha256, out var copy)) copy.Pin.Dispose();
    }

    /// <summary>The largest piece of a checkpoint file one call carries.</summary>
    public const int PieceBytes = 4 << 20;

    /// <summary>A checkpoint this worker trained, offered to the other replicas: its plan and its folder in this silo's cache.</summary>
    private sealed record Offered(FolderPlan Plan, string Folder);

    /// <summary>
    /// The checkpoints offered, by manifest hash, the newest last: the last two train phases'. Kept past the end of the upload
    /// (a replica may be halfway through a copy when it becomes durable); read while the folder is still in the cache.
    /// </summary>
    private readonly List<(string Sha256, Offered Offer)> _offered = [];

    private void Offer(string sha256, FolderPlan plan, string folder)
    {
        _offered.RemoveAll(o => o.Sha256 == sha256);
        _offered.Add((sha256, new Offered(plan, folder)));
        if (_offered.Count > 2) _offered.RemoveAt(0);
    }

    /// <summary>A checkpoint offered here whose upload has not failed (a failed one's folder is deleted: it is trained again).</summary>
    private Offered? OfferOf(BlobRef checkpoint) =>
        _uploads.TryGetValue(checkpoint.Sha256, out var pending) && Failed(pending) ? null
            : _offered.FirstOrDefault(o => o.Sha256 == checkpoint.Sha256).Offer;

    public Task<byte[]?> OfferedManifest(BlobRef checkpoint) => Task.FromResult(OfferOf(checkpoint)?.Plan.ManifestBytes);

    public async Task<byte[]> OfferedPiece(BlobRef checkpoint, string file, long offset, int count)
    {
        var offered = OfferOf(checkpoint)
            ?? throw new PhaseFailedException($"checkpoint {checkpoint.Path} is not offered by this worker (its upload failed, or the worker restarted)");
        var entry = PieceOf(offered.Plan, file, offset, count);
        // A test holds the trainer here, a piece asked for and not yet read, to kill its silo in the middle of a copy.
        await faults.ReachAsync(ServePoint, CancellationToken.None);
        var piece = new byte[(int)Math.Min(count, entry.Size - offset)];
        using var handle = File.OpenHandle(Path.Combine(offered.Folder, file), FileMode.Open, FileAccess.Read, FileShare.Read);
        int read = 0;
        while (read < piece.Length && await RandomAccess.ReadAsync(handle, piece.AsMemory(read), offset + read) is var got and > 0) read += got;
        return read == piece.Length ? piece : piece[..read];
    }

    /// <summary>
    /// The plan entry a piece is read from: only the plan's own files, by exact name (nothing else in or outside the folder can
    /// be read through <see cref="OfferedPiece"/>), at most <see cref="PieceBytes"/>, starting inside the file.
    /// </summary>
    public static BlobPointer PieceOf(FolderPlan plan, string file, long offset, int count)
    {
        var entry = plan.Files.FirstOrDefault(f => Path.GetFileName(f.Path) == file)
            ?? throw new PhaseFailedException($"checkpoint {plan.Manifest.Path} has no file '{file}'");
        if (count < 1 || count > PieceBytes || offset < 0 || offset >= entry.Size)
            throw new PhaseFailedException($"a piece of {count} bytes at {offset} of '{file}' is outside its {entry.Size} bytes or over {PieceBytes} bytes");
        return entry;
    }

    public async Task<Dictionary<string, double>?> ReceiveCheckpoint(BlobRef checkpoint, IPolicyWorkerGrain holder, CancellationToken ct)
    {
        // Work outside a phase call: an idle release due now would end this activation, and the copy's pin with it, before the
        // evaluation shard that the copy is for arrives.
        StopIdleWatch();
        try { return await Receive(checkpoint, holder, ct); }
        finally { WatchIdle("checkpoint-copy"); }
    }

    private async Task<Dictionary<string, double>?> Receive(BlobRef checkpoint, IPolicyWorkerGrain holder, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var pointer = Pointer(checkpoint);
        // An earlier copy needs no pin any more: its round committed (it is durable, read from storage like any other if
        // evicted) or it was abandoned (its upload failed or was lost, and the round trained again under another hash).
        // Kept pinned, an abandoned copy would hold its disk space until this activation ended.
        foreach (var sha in _copied.Keys.Where(s => s != checkpoint.Sha256).ToList()) Uncopy(sha);
        if (await holder.OfferedManifest(checkpoint) is not { } bytes) return null;
        var manifest = CheckpointStore.ParseManifest(pointer, bytes);
        var pin = cache.Pin([checkpoint.Sha256]);
        long copied;
        try { copied = await cache.ReceiveAsync(pointer, manifest, Piece, PieceBytes, ct); }
        catch
        {
            pin.Dispose();
            throw;
        }
        log.LogInformation("worker {Key}: checkpoint {Sha256} copied from the replica that trained it, while it uploads: {Files} files, {Bytes} bytes in {Seconds:F2} s",
            this.GetPrimaryKeyString(), checkpoint.Sha256, manifest.Files.Count, copied, clock.Elapsed.TotalSeconds);
        // Until seen durable it stays pinned, and a generation on it stores nothing before replica 0 says so (KeptDurable).
        Uncopy(checkpoint.Sha256);
        _copied[checkpoint.Sha256] = (checkpoint, pin);
        return new() { ["checkpoint/copy_seconds"] = clock.Elapsed.TotalSeconds };

        // A test holds the copy here, a piece received and not yet written (its staging folder half full), to kill its silo.
        async Task<byte[]> Piece(string file, long offset, int count)
        {
            var piece = await holder.OfferedPiece(checkpoint, file, offset, count);
            await faults.ReachAsync(CopyPoint, ct);
            return piece;
        }
    }

    /// <summary>The fault point inside a copy on the receiving replica: a piece received from the trainer, not yet written.</summary>
    public const string CopyPoint = "checkpoint-copy/piece-received";

    /// <summary>The fault point inside a copy on the trainer: a piece asked for, not yet read from its folder.</summary>
    public const string ServePoint = "checkpoint-copy/piece-served";
}
