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
    /// <summary>Kept trained copies not yet seen durable, by manifest hash: the local folder of their tokenizer files.</summary>
    private readonly Dictionary<string, string> _kept = new(StringComparer.Ordinal);

    private ITextTokenizer? _trainingTokenizer;   // of the session held: the tokenizer P_{N+1}'s checkpoint is written with

    public Task<bool> Keeps(BlobRef checkpoint) => Task.FromResult(_kept.ContainsKey(checkpoint.Sha256));

    /// <summary>Remembers a trained copy kept in memory as checkpoint <paramref name="sha256"/>, with its tokenizer files here.</summary>
    private void Kept(string sha256, ITextTokenizer tokenizer) => _kept[sha256] = cache.AdoptPart(sha256, "kept-tokenizer", tokenizer.HfFiles());

    /// <summary>
    /// The folder a phase reads a checkpoint held in memory from, where it is a kept copy whose upload is not yet durable
    /// (null: read as any other). One seen durable in storage is forgotten here, and read from then on as any other.
    /// </summary>
    private async Task<string?> KeptFolder(BlobRef checkpoint, CancellationToken ct)
    {
        if (!_kept.TryGetValue(checkpoint.Sha256, out var folder)) return null;
        if (!await Durable(checkpoint, ct)) return folder;
        _kept.Remove(checkpoint.Sha256);
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
        if (!_kept.ContainsKey(policy.Sha256)) return 0;
        var clock = Stopwatch.StartNew();
        log.LogInformation("run {Run}: a generation on checkpoint {Manifest}, kept in memory from training, waits for its upload on replica 0 before storing its responses",
            runId, policy.Path);
        Dictionary<string, double>? durable;
        try { durable = await GrainFactory.GetGrain<IPolicyWorkerGrain>(ReplicaKeys.Of(runId, 0)).CheckpointDurable(policy, ct); }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            log.LogInformation("run {Run}: a generation on checkpoint {Manifest} stops: that checkpoint's upload failed", runId, policy.Path);
            throw new PhaseFailedException($"the upload of its policy {policy.Path} failed: {e.GetType().Name}: {e.Message}");
        }
        if (durable is null)
        {
            log.LogInformation("run {Run}: a generation on checkpoint {Manifest} stops: that checkpoint was lost before its upload finished", runId, policy.Path);
            throw new PhaseFailedException($"its policy {policy.Path} was lost before its upload finished");
        }
        _kept.Remove(policy.Sha256);
        return clock.Elapsed.TotalSeconds;
    }
}
