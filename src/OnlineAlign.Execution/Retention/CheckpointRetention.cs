using OnlineAlign.Alignment.Health;
using OnlineAlign.Contracts;

namespace OnlineAlign.Execution.Retention;

/// <summary>
/// Which rounds' checkpoints a run keeps in storage (pure: the orchestrator marks and deletes the rest). Kept:
/// round 0 (the initial policy: every phase loads it, and it is where a rollback ends at worst), the last
/// <c>retention.keep_last</c> rounds, the best round by <c>retention.best_metric</c> and the guard's (guard.enabled), and, while rounds remain,
/// what the next round reads: its policy P_r (the last round's), P_{r-1} and P_{r-2} (its judge phase loads them
/// for CREAM's previous judge and the implicit reward's reference), and one round more, so that a corrupt last
/// checkpoint rolls back one round instead of to the start.
/// </summary>
public static class CheckpointRetention
{
    /// <summary>Rounds the next round reads (P_r, P_{r-1}, P_{r-2}).</summary>
    public const int ReadByNextRound = 3;

    /// <summary>Rounds kept beyond those while the run goes on: room to roll back past a corrupt last checkpoint.</summary>
    public const int RollbackMargin = 1;

    /// <summary>The rounds (0 included) whose checkpoints are kept, given the run's committed rounds in order.</summary>
    public static SortedSet<int> Kept(RunSpec spec, IReadOnlyList<RoundRecord> rounds)
    {
        var kept = new SortedSet<int> { 0 };
        if (spec.Retention.KeepLast <= 0)
        {
            foreach (var r in rounds) kept.Add(r.Round);
            return kept;
        }
        int last = rounds.Count == 0 ? 0 : rounds.Max(r => r.Round);
        int window = spec.Retention.KeepLast;
        if (rounds.Count < spec.Rounds) window = Math.Max(window, ReadByNextRound + RollbackMargin);
        foreach (var r in rounds.Where(r => r.Round > last - window)) kept.Add(r.Round);
        if (spec.Retention.KeepBest && Best(spec, rounds) is { } best) kept.Add(best);
        // The label-free guard's best round is what `export` takes by default: never deleted.
        if (GuardDecision.Decide(spec.Guard, rounds.Select(r => (r.Round, (IReadOnlyDictionary<string, double>)r.Metrics)).ToList()).BestRound is { } guarded)
            kept.Add(guarded);
        return kept;
    }

    /// <summary>The round with the highest best_metric (the earliest of equals); null when no round has a finite value.</summary>
    public static int? Best(RunSpec spec, IReadOnlyList<RoundRecord> rounds)
    {
        RoundRecord? best = null;
        foreach (var r in rounds)
            if (r.Metrics.TryGetValue(spec.Retention.BestMetric, out double v) && double.IsFinite(v) && (best is null || v > best.Metrics[spec.Retention.BestMetric]))
                best = r;
        return best?.Round;
    }

    /// <summary>
    /// The records whose checkpoints are to be deleted now: committed rounds not kept and superseded rounds (with
    /// retention on), not deleted already, and never one whose checkpoint a kept record or the initial policy uses.
    /// </summary>
    public static List<RoundRecord> ToDelete(RunSpec spec, IReadOnlyList<RoundRecord> rounds, IReadOnlyList<RoundRecord> superseded, string? initialPath)
    {
        if (spec.Retention.KeepLast <= 0) return [];
        var kept = Kept(spec, rounds);
        var keptPaths = rounds.Where(r => kept.Contains(r.Round)).Select(r => r.ManifestPath).ToHashSet(StringComparer.Ordinal);
        if (initialPath is not null) keptPaths.Add(initialPath);
        return rounds.Where(r => !kept.Contains(r.Round)).Concat(superseded.Where(r => r.Round > 0))
            .Where(r => !r.CheckpointDeleted && r.ManifestPath.Length > 0 && !keptPaths.Contains(r.ManifestPath))
            .ToList();
    }

    /// <summary>
    /// The last round a run can go on from once round <paramref name="corrupt"/>'s checkpoint failed its check: the
    /// newest earlier round whose checkpoint and those the round after it reads are all still in storage; 0 (the
    /// initial policy, always kept) when there is none.
    /// </summary>
    public static int RollbackTarget(IReadOnlyList<RoundRecord> rounds, int corrupt)
    {
        for (int k = Math.Min(corrupt - 1, rounds.Count == 0 ? 0 : rounds.Max(r => r.Round)); k >= 1; k--)
        {
            int from = Math.Max(1, k - ReadByNextRound + 1);
            if (Enumerable.Range(from, k - from + 1).All(j => rounds.Any(r => r.Round == j && !r.CheckpointDeleted))) return k;
        }
        return 0;
    }
}
