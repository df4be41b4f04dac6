using System.Diagnostics;
using Microsoft.Extensions.Logging;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runs;
using OnlineAlign.Storage;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// The trained checkpoint's upload behind the phases after training (Silo:OverlapCheckpointUpload). The train phase hashes
/// the folder it wrote, so the manifest (and its hash, by which every later phase names the checkpoint) is known before a
/// byte is sent; it keeps the folder as this silo's cached copy and returns. The upload then runs on its own, and only once
/// every file and then the manifest are in storage does it write the phase's "done" marker. The orchestrator evaluates
/// meanwhile (here, from the cached folder or the trained model in memory) and commits the round only after
/// <see cref="CheckpointDurable"/> said the upload finished: no committed round, and no marker, names a checkpoint that
/// is not whole in storage. If this worker stops first, the upload and the checkpoint are lost with it, and the round's
/// train phase runs again (no marker), as after a kill inside a synchronous upload.
/// <para>
/// A failed upload's local copy is deleted (nothing will name that checkpoint, and on a full disk its space is what the
/// retry needs) only once nothing reads it: when the train phase is asked again (the orchestrator asks only after the
/// round's evaluation has returned, and this grain runs one phase at a time) or when this activation ends. Deleted as the
/// failure was reported, it went while the evaluation was about to read it, which then failed with a missing manifest.
/// </para>
/// </summary>
public sealed partial class PolicyWorkerGrain
{
    /// <summary>A checkpoint being uploaded: the train phase's key and output, and the upload (its seconds once durable).</summary>
    private sealed record PendingUpload(string RunId, int Round, string Key, PhaseOutput Output, Task<double> Upload);

    /// <summary>The planned upload the train phase in flight hands to <see cref="Once"/>, which starts it once the phase has returned.</summary>
    private sealed record Behind(FolderPlan Plan, string Folder, int Round, IDisposable Pin);

    /// <summary>The uploads under way, by manifest hash (touched on the activation's scheduler only).</summary>
    private readonly Dictionary<string, PendingUpload> _uploads = new(StringComparer.Ordinal);

    private Behind? _behind;

    /// <summary>
    /// Hashes a trained folder into the checkpoint it will be under <paramref name="prefix"/> and keeps it as this silo's
    /// cached copy (pinned until uploaded: the evaluate phase reads it from there); the upload starts when the phase returns.
    /// The large files' hashes come from their write (<paramref name="written"/>), the others are read here.
    /// </summary>
    private async Task<BlobPointer> UploadBehind(string prefix, string folder, IReadOnlyDictionary<string, string> written, int round, CancellationToken ct)
    {
        var plan = await CheckpointStore.PlanFolderAsync(prefix, folder, written, ct);
        var pin = cache.Pin([plan.Manifest.Sha256]);
        cache.Adopt(folder, plan.Manifest);
        _behind = new Behind(plan, cache.Folder(plan.Manifest.Sha256), round, pin);
        return plan.Manifest;
    }

    /// <summary>
    /// Starts the upload of a phase's planned checkpoint, off the activation's scheduler (it reads only its folder and
    /// storage), and not cancelled with the call that trained it: a pause between rounds should not throw a finished
    /// checkpoint away. The marker is written after the manifest, so a phase asked again reuses only a durable checkpoint.
    /// </summary>
    private PhaseOutput StartUpload(string runId, string key, string marker, Behind behind, PhaseOutput output, double lookup)
    {
        _behind = null;
        string point = $"train/round-{behind.Round}";
        var upload = Task.Run(async () =>
        {
            using var pin = behind.Pin;
            var clock = Stopwatch.StartNew();
            // Inside the window: the train phase has returned, its checkpoint is named but not yet durable.
            await faults.ReachAsync($"{point}/background-upload", CancellationToken.None);
            await Upload(behind.Plan, behind.Folder, point, CancellationToken.None);
            double seconds = clock.Elapsed.TotalSeconds;
            await store.WriteFirstAsync(marker, PhaseBlobs.Bytes(output with
            {
                Metrics = new Dictionary<string, double>(output.Metrics) { ["checkpoint/upload_seconds"] = seconds },
            }));
            log.LogInformation("run {Run} round {Round}: checkpoint {Manifest} uploaded behind the phases after training ({Seconds:F2} s)",
                runId, behind.Round, behind.Plan.Manifest.Path, seconds);
            return seconds;
        });
        _uploads[output.Output.Sha256] = new PendingUpload(runId, behind.Round, key, output, upload);
        Offer(output.Output.Sha256, behind.Plan, behind.Folder);
        var metrics = new Dictionary<string, double>(output.Metrics);
        metrics["time/storage"] = metrics.GetValueOrDefault("time/storage") + lookup;
        return output with { Metrics = metrics };
    }

    /// <summary>
    /// The output of the train phase with this key while its checkpoint uploads here. A failed upload is forgotten, its
    /// local copy with it (the evaluation that read it has returned: the phase is asked again only after it): trained again.
    /// </summary>
    private PhaseOutput? Uploading(string key)
    {
        var pending = _uploads.Values.FirstOrDefault(u => u.Key == key);
        if (pending is null) return null;
        if (!Failed(pending)) return pending.Output;
        ForgetFailed(pending);
        return null;
    }

    private static bool Failed(PendingUpload pending) => pending.Upload.IsFaulted || pending.Upload.IsCanceled;

    private void ForgetFailed(PendingUpload pending)
    {
        _uploads.Remove(pending.Output.Output.Sha256);
        _offered.RemoveAll(o => o.Sha256 == pending.Output.Output.Sha256);
        cache.Forget(pending.Output.Output.Sha256);
    }

    public async Task<Dictionary<string, double>?> CheckpointDurable(BlobRef checkpoint, CancellationToken ct)
    {
        if (_uploads.TryGetValue(checkpoint.Sha256, out var pending))
        {
            try { return new() { ["checkpoint/upload_seconds"] = await pending.Upload.WaitAsync(ct) }; }
            // The failed upload stays listed, and its local copy on disk, until the train phase is asked again (Uploading):
            // the evaluation may be reading that copy now.
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                // Told as a train phase's full disk is (Once): where, and on which silo.
                if (FailureClassifier.DiskFull(e) is { } where)
                    log.LogError(e, "run {Run} round {Round} train: disk full ({Where}) while its checkpoint uploaded", pending.RunId, pending.Round,
                        where == "local disk" ? LocalDisk : where);
                else
                    log.LogWarning(e, "run {Run} round {Round}: the upload of checkpoint {Manifest} failed; the train phase runs again",
                        pending.RunId, pending.Round, checkpoint.Path);
                throw UploadFailures.ToPhaseFailure(e, checkpoint.Path, LocalDisk);
            }
            finally { if (pending.Upload.IsCompletedSuccessfully) _uploads.Remove(checkpoint.Sha256); }
        }
        // Not uploading here (finished earlier, or this activation never trained it: its worker stopped): durable exactly when its
        // manifest, written after every file, is in storage with that hash.
        try { return await store.TryReadAsync(checkpoint.Path, ct) is { } manifest && CheckpointStore.Sha256(manifest) == checkpoint.Sha256 ? [] : null; }
        catch (CorruptBlobException) { return null; }
    }

    /// <summary>
    /// A generation on a checkpoint this worker still uploads (the next round's, started before the commit) stores nothing
    /// before that checkpoint is durable: so no output of a round names a policy that a crash or a failed upload can still
    /// lose, and a kill in that window leaves nothing of it in storage. A failed upload fails the generation with it.
    /// </summary>
    /// <returns>the seconds waited (0: the checkpoint was durable)</returns>
    private async Task<double> PolicyDurable(BlobRef policy, CancellationToken ct)
    {
        if (!_uploads.TryGetValue(policy.Sha256, out var pending) || pending.Upload.IsCompletedSuccessfully) return 0;
        var clock = Stopwatch.StartNew();
        log.LogInformation("run {Run}: a generation on checkpoint {Manifest} waits for its upload before storing its responses", pending.RunId, policy.Path);
        try { await pending.Upload.WaitAsync(ct); }
        // The upload's failure is reported once, by the round it belongs to (CheckpointDurable); here it only ends a generation
        // nobody will take. Rethrown as it was, a deterministic one was logged as an error "round N+1 generate failed", with its
        // stack, while round N+1 had not started (UploadOverlapFaultTests).
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            log.LogInformation("run {Run}: a generation on checkpoint {Manifest} stops: that checkpoint's upload failed", pending.RunId, policy.Path);
            throw new PhaseFailedException($"the upload of its policy {policy.Path} failed: {e.GetType().Name}: {e.Message}");
        }
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Waits for the uploads under way (an activation that ends lets them finish, bounded by its deactivation's time), then
    /// deletes the local copies of those that failed: no phase of this activation reads them any more.
    /// </summary>
    private async Task UploadsFinished(CancellationToken ct)
    {
        if (_uploads.Count == 0) return;
        try { await Task.WhenAll(_uploads.Values.Where(u => !u.Upload.IsCompleted).Select(u => u.Upload)).WaitAsync(ct); }
        catch (Exception e) { log.LogWarning(e, "worker {Key}: a checkpoint upload did not finish before it deactivated", this.GetPrimaryKeyString()); }
        foreach (var failed in _uploads.Values.Where(Failed).ToList()) ForgetFailed(failed);
    }
}
