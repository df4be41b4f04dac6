using Grpc.Core;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Forks;
using OnlineAlign.Grains.Runtime;
using OnlineAlign.Storage;
using V1 = OnlineAlign.Api.V1;

namespace OnlineAlign.Silo.Api;

/// <summary>
/// StartRun with fork_from: the parent's committed round, its spec with the overrides, and the copy of its checkpoint
/// that becomes the child's round 0. The checkpoint is copied (not referenced) into the child's own storage, so the
/// parent's retention may delete its round afterwards and the child still has its round 0; the parent is only read.
/// </summary>
public static class RunForks
{
    /// <summary>The parent's spec with the overrides (INVALID_ARGUMENT naming each bad one), as the wire's RunSpec.</summary>
    public static V1.RunSpec Spec(RunStatus parent, V1.ForkFrom fork)
    {
        // A parent saved by another version has a spec this one cannot read: its fields would come back as defaults.
        if (parent.OtherFormat is { } why) throw new RpcException(new Status(StatusCode.FailedPrecondition, "fork_from.run_id: " + why));
        var (spec, problems) = V1.SpecOverrides.Apply(SpecConversion.ToProto(parent.Spec), fork.Overrides);
        if (problems.Count > 0)
            throw new RpcException(new Status(StatusCode.InvalidArgument, "fork_from.overrides: " + string.Join("; ", problems)));
        return spec;
    }

    /// <summary>The parent's record of the round (round 0: its initial policy); INVALID_ARGUMENT unless it is committed.</summary>
    public static async Task<(RoundRecord Round, RoundRecord Initial)> Round(IRunGrain parent, V1.ForkFrom fork)
    {
        var rounds = await parent.Rounds();
        var initial = await parent.Initial();
        var record = fork.Round == 0 ? initial : rounds.FirstOrDefault(r => r.Round == fork.Round);
        if (fork.Round < 0 || record is null || initial is null)
        {
            var committed = (initial is null ? Enumerable.Empty<int>() : [0]).Concat(rounds.Select(r => r.Round));
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"fork_from.round: round {fork.Round} of run '{fork.RunId}' is not committed (committed: {string.Join(", ", committed)})"));
        }
        if (record.CheckpointDeleted)
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"fork_from.round: the checkpoint of round {fork.Round} of run '{fork.RunId}' was removed by its retention " +
                    "(retention.keep_last); fork from a kept round"));
        return (record, initial);
    }

    /// <summary>
    /// Copies the round's checkpoint (a LoRA round's adapter with the parent's base, <see cref="ForkFiles"/>) to the
    /// child's round-0 folder. A checkpoint deleted by the parent's retention meanwhile is FAILED_PRECONDITION.
    /// </summary>
    public static async Task<BlobRef> CopyAsync(CheckpointStore store, string childId, V1.ForkFrom fork,
        RoundRecord round, RoundRecord initial, CancellationToken ct)
    {
        try
        {
            var roundFiles = await Files(store, round, ct);
            var initialFiles = ForkFiles.IsAdapterOnly(roundFiles.Keys) ? await Files(store, initial, ct) : [];
            var files = ForkFiles.Select(initialFiles.Keys, roundFiles.Keys)
                .Select(f => (f.Name, f.FromRound ? roundFiles[f.Name] : initialFiles[f.Name])).ToList();
            // A folder of this request's own: twin requests (the same request id, so the same child) racing each copy to
            // their own, and one that fails deletes only what it copied, never the copy the other's child holds.
            var manifest = await store.CopyFolderAsync($"runs/{childId}/round-0000/fork-{Guid.NewGuid():N}", files, ct);
            return new BlobRef { Path = manifest.Path, Sha256 = manifest.Sha256 };
        }
        catch (FileNotFoundException e)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"fork_from.round: the checkpoint of round {fork.Round} of run '{fork.RunId}' is gone from storage ({e.Message}); fork from a kept round"));
        }
        catch (CorruptBlobException e)
        {
            throw new RpcException(new Status(StatusCode.DataLoss, $"fork_from.round: round {fork.Round} of run '{fork.RunId}': {e.Message}"));
        }
    }

    /// <summary>
    /// Copies the round's checkpoint to a folder of this request's own under the child's prefix (unless <paramref name="copied"/>
    /// says a retried fork's run holds it already), reaches the fault point "fork/round-R/copied", then starts the child.
    /// Afterwards, whether the start failed or answered a child a twin request had started with its own copy, what this
    /// call copied is deleted unless it is the child's round 0 (<paramref name="childCopy"/>: the copy the child holds, null
    /// when there is no child). Best effort: when that is unknown (storage away), the copy is kept rather than risk a run's
    /// round 0; a copy never reaches a run but through its own request, so no other request's copy is ever deleted here.
    /// </summary>
    public static async Task<T> CopyThenStartAsync<T>(CheckpointStore store, FaultPoints faults, string childId, V1.ForkFrom fork,
        RoundRecord round, RoundRecord initial, BlobRef? copied, Func<BlobRef, Task<T>> start, Func<Task<BlobRef?>> childCopy, CancellationToken ct)
    {
        bool copiedHere = copied is null;
        copied ??= await CopyAsync(store, childId, fork, round, initial, ct);
        T started;
        try
        {
            await faults.ReachAsync($"fork/round-{fork.Round}/copied", ct);
            started = await start(copied);
        }
        catch (Exception) when (copiedHere)
        {
            await ReleaseUnusedAsync(store, copied, childCopy);
            throw;
        }
        if (copiedHere) await ReleaseUnusedAsync(store, copied, childCopy);
        return started;
    }

    /// <summary>Deletes this request's copy unless the child holds it; never throws (the start's outcome is the one to report).</summary>
    private static async Task ReleaseUnusedAsync(CheckpointStore store, BlobRef copied, Func<Task<BlobRef?>> childCopy)
    {
        try
        {
            if ((await childCopy())?.Path != copied.Path) await store.DeleteCheckpointAsync(copied.Path, CancellationToken.None);
        }
        catch (Exception) { } // unknown whether the child holds it, or storage is away: keep the copy rather than risk a run's round 0
    }

    private static async Task<Dictionary<string, BlobPointer>> Files(CheckpointStore store, RoundRecord record, CancellationToken ct)
    {
        var manifest = await store.ReadManifestAsync(new BlobPointer(record.ManifestPath, record.ManifestSha256, 0), ct);
        return manifest.Files.ToDictionary(f => Path.GetFileName(f.Path), StringComparer.Ordinal);
    }
}
