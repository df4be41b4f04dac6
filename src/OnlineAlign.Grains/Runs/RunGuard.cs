using OnlineAlign.Alignment.Health;
using OnlineAlign.Contracts;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// The label-free guard over a run's records: recomputed from round 0's and the committed rounds' metrics whenever it
/// is asked (no state of its own), so a restarted silo, a rollback or a reader all see the same verdict.
/// </summary>
public static class RunGuard
{
    public static GuardVerdict Of(RunSpec? spec, RoundRecord? baseline, IReadOnlyList<RoundRecord> rounds) =>
        spec is null ? new GuardVerdict(null, "", null, null)
            : GuardDecision.Decide(spec.Guard, (baseline is null ? [] : new[] { baseline }).Concat(rounds)
                .Select(r => (r.Round, (IReadOnlyDictionary<string, double>)r.Metrics)).ToList());

    /// <summary>The run's status with the guard's best round and stop reason (unchanged with the guard off).</summary>
    public static RunStatus With(RunStatus status, RunState state)
    {
        var verdict = Of(state.Spec, state.Baseline, state.Rounds);
        return verdict.BestRound is null
            ? status
            : status with { BestRound = verdict.BestRound, BestReason = verdict.BestReason, StopReason = verdict.StopReason };
    }
}
