using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runs;

namespace OnlineAlign.Grains.Workers;

/// <summary>What a checkpoint's failed background upload is reported as to the orchestrator (PolicyWorkerGrain.CheckpointDurable).</summary>
public static class UploadFailures
{
    /// <summary>
    /// By the failure's kind: a full disk, local or the storage account's, as <see cref="FailureClassifier.DiskFullFailure"/>
    /// (counted up to max_phase_attempts, naming the checkpoint); storage unreachable or busy, transient; anything else,
    /// deterministic. Either way the round's train phase runs again, and only this round's attempt is lost: the upload writes
    /// nothing but its own attempt folder, manifest last, and earlier rounds' checkpoints are write-once.
    /// </summary>
    /// <param name="manifest">the checkpoint's manifest path in storage</param>
    /// <param name="localDisk">the local disk as the run's error names it (silo and cache folder)</param>
    public static Exception ToPhaseFailure(Exception e, string manifest, string localDisk) =>
        FailureClassifier.DiskFull(e) is { } where
            ? FailureClassifier.DiskFullFailure(e, where == "local disk" ? localDisk : where, $"checkpoint {manifest}")
            : FailureClassifier.IsTransient(e) ? new TransientPhaseException($"checkpoint upload: {e.GetType().Name}: {e.Message}")
            : new PhaseFailedException($"checkpoint upload: {e.GetType().Name}: {e.Message}");
}
