using OnlineAlign.Modeling.Checkpoints;

namespace OnlineAlign.Execution.Forks;

/// <summary>
/// Which files make a forked run's round 0 out of its parent's checkpoints (pure: names only). A full checkpoint is
/// taken as it is. A LoRA run's later rounds hold only the adapter and name the base they were trained on (the
/// parent's round 0): the fork's round 0 is then that base folder with the round's adapter in place of round 0's, the
/// form of a LoRA run's round 0 (base weights unmerged, adapter beside them), so the child needs nothing of the parent.
/// </summary>
public static class ForkFiles
{
    /// <summary>Each file of the fork's round 0: its name, and whether it comes from the round (else from the parent's round 0).</summary>
    public static List<(string Name, bool FromRound)> Select(IReadOnlyCollection<string> parentInitial, IReadOnlyCollection<string> round)
    {
        if (!IsAdapterOnly(round)) return round.Select(name => (name, true)).ToList();
        var files = parentInitial.Where(name => !round.Contains(name)).Select(name => (name, false))
            .Concat(round.Where(name => name != PolicyCheckpoint.BaseFile).Select(name => (name, true)));
        return files.OrderBy(f => f.name, StringComparer.Ordinal).ToList();
    }

    /// <summary>An adapter-only checkpoint: no base weights of its own, and the file that names its base.</summary>
    public static bool IsAdapterOnly(IReadOnlyCollection<string> names) =>
        names.Contains(PolicyCheckpoint.BaseFile) && !names.Contains(HfCheckpoint.WeightsFile) && !names.Contains(HfCheckpoint.IndexFile);
}
