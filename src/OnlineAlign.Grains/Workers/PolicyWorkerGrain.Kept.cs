using System.Diagnostics;
using Microsoft.Extensions.Logging;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runs;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Storage;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// A data-parallel replica's trained copy, before its checkpoint is in storage. Every replica applied the same updates, so
/// each holds P_{N+1} in memory under the hash replica 0 gave it (EndTraining), while replica 0 still uploads it. A phase
/// here may run from that copy at once (the next round's generation started early, this round's evaluation shard) with
/// the tokenizer files the replica wrote itself (those replica 0 wrote into the checkpoint, from the same tokenizer); it
/// never reads the checkpoint from storage before its manifest, written last, is there. A generation on it stores nothing
/// before replica 0 said the upload is durable (the rule <see cref="PolicyDurable"/> keeps on replica 0).
/// </summary>
public sealed partial class PolicyWorkerGrain
{
    /// <summary>A kept trained copy: the local folder of its tokenizer files, and the device its model is held on.</summary>
    private sealed record KeptCopy(string Folder, TorchSharp.torch.Device Device);

    /// <summary>Kept trained copies not yet seen durable, by manifest hash.</summary>
    private readonly Dictionary<string, KeptCopy> _kept = new(StringComparer.Ordinal);

    private ITextTokenizer? _trainingTokenizer;   // of the session held: the tokenizer P_{N+1}'s checkpoint is written with

    /// <summary>
    /// Whether a kept copy's model is still in memory here (the model cache lets its least recently used ones go), or this
    /// worker copied the checkpoint from the trainer and its verified folder is still in the cache (PolicyWorkerGrain.Peers.cs).
    /// </summary>
    public async Task<bool> Keeps(BlobRef checkpoint)
    {
        bool keeps = await KeepsHere(checkpoint);
        // A test ends this activation here, as an idle release due just after this answer would: the generation the run grain
        // sends next lands on a new activation that knows nothing of the copy (PolicyDurableBeforeStoring, Fetch).
        if (keeps && faults.Fires($"replica-idle/keeps/replica-{RunAndReplica.Replica}"))
            LetModelsGo("its idle release was fired after it said it keeps a checkpoint");
        return keeps;
    }

    private async Task<bool> KeepsHere(BlobRef checkpoint)
    {
        if (_copied.ContainsKey(checkpoint.Sha256) && cache.Holds(checkpoint.Sha256)) return true;
        if (!_kept.TryGetValue(checkpoint.Sha256, out var kept)) return false;
        var models = Models;
        return await Thread.Run(() =>
        {
            var (held, handle) = models.Hold([checkpoint.Sha256], kept.Device);
            handle.Dispose();
            return held.Count > 0;
        });
    }

    /// <summary>Remembers a trained copy kept in memory as checkpoint <paramref name="sha256"/>, with its tokenizer files here.</summary>
    private void Kept(string sha256, ITextTokenizer tokenizer, TorchSharp.torch.Device device) =>
        _kept[sha256] = new KeptCopy(cache.AdoptPart(sha256, "kept-tokenizer", tokenizer.HfFiles()), device);

    /// <summary>
    /// The folder a phase reads a checkpoint from, where it is a kept copy held in memory whose upload is not yet durable
    /// (null: read as any other). One seen durable is forgotten here, and read from then on as any other; one no longer
    /// held (or its folder gone with the oldest partial copies) is read from storage only once replica 0 says it is whole.
    /// </summary>
    private async Task<string?> KeptFolder(BlobRef checkpoint, bool held, CancellationToken ct)
    {
        if (!_kept.TryGetValue(checkpoint.Sha256, out var kept)) return null;
        bool usable = held && Directory.Exists(kept.Folder);
        if (await Durable(checkpoint, ct)) _kept.Remove(checkpoint.Sha256);
        else if (usable) return kept.Folder;
        else await TrainerSaysDurable(RunAndReplica.Run, checkpoint, ct);
        return null;
    }

    /// <summary>Whether the checkpoint is whole in storage: its manifest, written after every file, is there with that hash.</summary>
    private async Task<bool> Durable(BlobRef checkpoint, CancellationToken ct)
    {
        try { return await store.TryReadAsync(checkpoint.Path, ct) is { } manifest && CheckpointStore.Sha256(manifest) == checkpoint.Sha256; }
        catch (CorruptBlobException) { return false; }
    }

    /// <summary>
    /// Before a generation on a kept copy stores its responses: waits until replica 0, which uploads the checkpoint, says it
    /// is durable. A lost or failed upload fails the generation (nobody will take it: its round trains again).
    /// </summary>
    /// <returns>the seconds waited (0: not a kept copy still uploading)</returns>
    private async Task<double> KeptDurable(string runId, BlobRef policy, CancellationToken ct)
    {
        bool kept = _kept.ContainsKey(policy.Sha256);
        if (!kept && !_copied.ContainsKey(policy.Sha256)) return 0;
        var clock = Stopwatch.StartNew();
        // A copy's round has usually committed by the time its next round generates (the early generation aside): no wait then.
        if (!kept && await Durable(policy, ct))
        {
            Uncopy(policy.Sha256);
            return 0;
        }
        log.LogInformation(
            "run {Run}: a generation on checkpoint {Manifest}, {How}, waits for its upload on replica 0 before storing its responses",
            runId, policy.Path, kept ? "kept in memory from training" : "copied from the trainer");
        await TrainerSaysDurable(runId, policy, ct);
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Before a generation stores its responses, its policy is durable: uploaded here (<see cref="PolicyDurable"/>), kept or
    /// copied here (<see cref="KeptDurable"/>), or else as storage says, and where it is not there yet, once replica 0 says so.
    /// The last case is a new activation on a silo whose cache holds a copy that an earlier activation took and that ended
    /// (an idle release) between saying it keeps the checkpoint and this generation: it would otherwise store round N+1's
    /// responses before round N's checkpoint is durable.
    /// </summary>
    /// <returns>the seconds waited (0: the policy was durable)</returns>
    private async Task<double> PolicyDurableBeforeStoring(string runId, BlobRef policy, CancellationToken ct)
    {
        if (_uploads.ContainsKey(policy.Sha256)) return await PolicyDurable(policy, ct);
        if (_kept.ContainsKey(policy.Sha256) || _copied.ContainsKey(policy.Sha256)) return await KeptDurable(runId, policy, ct);
        if (await Durable(policy, ct)) return 0;
        var clock = Stopwatch.StartNew();
        log.LogInformation("run {Run}: a generation on checkpoint {Manifest}, not durable yet and not held by this activation, waits for its upload on replica 0 before storing its responses",
            runId, policy.Path);
        await TrainerSaysDurable(runId, policy, ct);
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Waits until replica 0 says the kept checkpoint is durable (then forgotten here); a lost or failed upload throws.</summary>
    private async Task TrainerSaysDurable(string runId, BlobRef checkpoint, CancellationToken ct)
    {
        Dictionary<string, double>? durable;
        try { durable = await GrainFactory.GetGrain<IPolicyWorkerGrain>(ReplicaKeys.Of(runId, 0)).CheckpointDurable(checkpoint, ct); }
        catch (Exception e)
        {
            if (!ct.IsCancellationRequested) Uncopy(checkpoint.Sha256);   // its upload failed: nothing will name it again
            // Cancelled while the call failed (the run grain dropped this phase as the trainer's silo died): a cancellation,
            // which the phase logs as one; without this the failure left the silo's log silent about how the phase ended.
            ct.ThrowIfCancellationRequested();
            log.LogInformation("run {Run}: a phase on checkpoint {Manifest} stops: that checkpoint's upload failed", runId, checkpoint.Path);
            throw new PhaseFailedException($"the upload of checkpoint {checkpoint.Path} failed: {e.GetType().Name}: {e.Message}");
        }
        if (durable is null)
        {
            Uncopy(checkpoint.Sha256);
            log.LogInformation("run {Run}: a phase on checkpoint {Manifest} stops: that checkpoint was lost before its upload finished",
                runId, checkpoint.Path);
            throw new PhaseFailedException($"checkpoint {checkpoint.Path} was lost before its upload finished");
        }
        _kept.Remove(checkpoint.Sha256);
        Uncopy(checkpoint.Sha256);
    }
}
