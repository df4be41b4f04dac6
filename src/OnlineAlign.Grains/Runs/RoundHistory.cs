using OnlineAlign.Contracts;
using OnlineAlign.Execution.Retention;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// Changes to a run's committed rounds other than a commit, on the state alone (the grain persists them):
/// a rollback past a corrupt checkpoint, and retention's marking of checkpoints to delete. Neither loses a
/// record: a discarded round moves to the superseded list, a deleted checkpoint's round keeps its metrics.
/// </summary>
public static class RoundHistory
{
    /// <summary>
    /// Round <paramref name="corrupt"/>'s checkpoint failed its hash check: the run goes on from the newest round
    /// before it that it can go on from (round 0: prepared again). The rounds after that are superseded, each
    /// marked with the new epoch that redoes it; the epoch goes up so that no phase reuses an output from before.
    /// </summary>
    public static void RollBack(RunState s, int corrupt, string message)
    {
        int target = corrupt == 0 ? -1 : CheckpointRetention.RollbackTarget(s.Rounds, corrupt);
        int epoch = s.Epoch + 1;
        if (target < 0)
        {
            if (s.Baseline is { } baseline) s.Superseded.Add(baseline with { SupersededByEpoch = epoch });
            (s.Initial, s.BeforeWarmStart, s.Baseline) = (null, null, null);
        }
        s.Superseded.AddRange(s.Rounds.Where(r => r.Round > target).Select(r => r with { SupersededByEpoch = epoch }));
        s.Rounds = s.Rounds.Where(r => r.Round <= target).ToList();
        s.Current = null;
        s.Epoch = epoch;
        string skipped = target >= 0 && target < corrupt - 1
            ? $"; rounds {target + 1} to {corrupt - 1} are redone too (checkpoints they need were removed by retention)" : "";
        s.Error = $"{message}: the checkpoint of round {corrupt} was discarded; continuing from the last good committed round ({s.Rounds.Count}){skipped}";
    }

    /// <summary>
    /// After a commit: marks the records whose checkpoints retention no longer keeps as deleted and queues their
    /// paths for deletion (deleted after this state is durable, so a record never points at a checkpoint that
    /// is gone without saying so). Returns how many were marked.
    /// </summary>
    public static int MarkForRetention(RunState s)
    {
        var doomed = CheckpointRetention.ToDelete(s.Spec!, s.Rounds, s.Superseded, s.Initial?.Path);
        if (doomed.Count == 0) return 0;
        var paths = doomed.Select(r => r.ManifestPath).ToHashSet(StringComparer.Ordinal);
        RoundRecord Mark(RoundRecord r) => paths.Contains(r.ManifestPath) && !r.CheckpointDeleted ? r with { CheckpointDeleted = true } : r;
        s.Rounds = s.Rounds.Select(Mark).ToList();
        s.Superseded = s.Superseded.Select(Mark).ToList();
        foreach (var path in paths) if (!s.PendingDeletes.Contains(path)) s.PendingDeletes.Add(path);
        return doomed.Count;
    }
}
