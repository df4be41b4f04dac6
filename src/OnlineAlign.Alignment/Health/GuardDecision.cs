using System.Globalization;
using OnlineAlign.Specs;

namespace OnlineAlign.Alignment.Health;

/// <summary>What the guard makes of a run's rounds so far.</summary>
/// <param name="BestRound">the best round by the label-free criterion (null: no round evaluated yet)</param>
/// <param name="BestReason">why that round, in words</param>
/// <param name="TrippedRound">the first round whose signals crossed a threshold (null: none did)</param>
/// <param name="StopReason">which signals crossed which thresholds in that round (null: none did)</param>
public sealed record GuardVerdict(int? BestRound, string BestReason, int? TrippedRound, string? StopReason)
{
    /// <summary>The run stops (completes) after the tripped round instead of going on.</summary>
    public bool Stop => TrippedRound is not null;
}

/// <summary>
/// The guard's decision, a pure function of the spec's thresholds and the rounds' recorded metrics: a round trips
/// the guard when any of its health signals crosses its threshold (a NaN signal, one that could not be measured,
/// never does); the run stops after the first such round, and its best round is the last one before it (round 0,
/// the initial policy, when round 1 tripped), or the last round when none tripped. The one relative signal, the score
/// entropy's rise over the round before (guard.max_score_entropy_rise), describes the policy that drew the round's
/// samples, P_{r-1}, not the round's update: when it trips, the best round is the one before that policy's, r - 2.
/// </summary>
public static class GuardDecision
{
    /// <param name="rounds">round 0 (where evaluated) and the committed rounds, in order, with their metrics</param>
    public static GuardVerdict Decide(GuardSpec guard, IReadOnlyList<(int Round, IReadOnlyDictionary<string, double> Metrics)> rounds)
    {
        if (!guard.Enabled) return new GuardVerdict(null, "the guard is off", null, null);
        if (rounds.Count == 0) return new GuardVerdict(null, "no round has been evaluated yet", null, null);
        IReadOnlyDictionary<string, double>? before = null;
        foreach (var (round, metrics) in rounds)
        {
            if (round == 0) continue; // the initial policy is what the signals are measured against
            var crossed = Crossings(guard, metrics);
            int last = rounds.Where(r => r.Round < round).Select(r => r.Round).DefaultIfEmpty(0).Max();
            int best = last;
            if (Rise(guard, metrics, before) is { } rise)
            {
                crossed.Add(rise);
                best = rounds.Where(r => r.Round < last).Select(r => r.Round).DefaultIfEmpty(0).Max();
            }
            before = metrics;
            if (crossed.Count == 0) continue;
            string why = string.Join("; ", crossed);
            return new GuardVerdict(best, $"the last round before round {round}'s health signals crossed the guard's thresholds ({why})"
                                          + (best < last ? $", and before round {last}, whose policy sampled round {round}" : ""),
                round, $"the guard stopped the run after round {round}: {why}; best round {best}");
        }
        return new GuardVerdict(rounds[^1].Round, "no health signal crossed its threshold: the last committed round", null, null);
    }

    /// <summary>
    /// The score entropy's rise over the round before's above guard.max_score_entropy_rise, in words; null when it did not
    /// rise that much, or either value is missing or NaN (round 1 has no round before it: round 0 samples nothing).
    /// </summary>
    public static string? Rise(GuardSpec g, IReadOnlyDictionary<string, double> m, IReadOnlyDictionary<string, double>? before)
    {
        if (before is null || !m.TryGetValue(HealthSignals.ScoreEntropy, out var now) || !before.TryGetValue(HealthSignals.ScoreEntropy, out var then))
            return null;
        double rise = now - then;
        return double.IsFinite(rise) && rise > g.MaxScoreEntropyRise
            ? $"{HealthSignals.ScoreEntropy} rose {F(rise)} (from {F(then)} to {F(now)}) above guard.max_score_entropy_rise {F(g.MaxScoreEntropyRise)}"
            : null;
    }

    /// <summary>Each threshold the round's signals crossed, in words ("health/judge_drift_tau 0.21 below guard.min_judge_tau 0.5").</summary>
    public static List<string> Crossings(GuardSpec g, IReadOnlyDictionary<string, double> m)
    {
        var crossed = new List<string>();
        void Below(string signal, double bound, string field)
        {
            if (m.TryGetValue(signal, out var v) && double.IsFinite(v) && v < bound) crossed.Add($"{signal} {F(v)} below guard.{field} {F(bound)}");
        }
        void Above(string signal, double value, double bound, string field)
        {
            if (double.IsFinite(value) && value > bound) crossed.Add($"{signal} {F(value)} above guard.{field} {F(bound)}");
        }
        double Get(string signal) => m.TryGetValue(signal, out var v) ? v : double.NaN;

        Below(HealthSignals.JudgeDriftTau, g.MinJudgeTau, "min_judge_tau");
        Above(HealthSignals.KlInitial, Get(HealthSignals.KlInitial), g.MaxKlInitial, "max_kl_initial");
        if (g.MaxKlInitialPerToken > 0)
            Above(HealthSignals.KlInitialPerToken, Get(HealthSignals.KlInitialPerToken), g.MaxKlInitialPerToken, "max_kl_initial_per_token");
        Above("|" + HealthSignals.LengthDrift + "|", Math.Abs(Get(HealthSignals.LengthDrift)), g.MaxLengthDrift, "max_length_drift");
        Above(HealthSignals.UnscoredRate, Get(HealthSignals.UnscoredRate), g.MaxUnscoredRate, "max_unscored_rate");
        Below(HealthSignals.ScoreEntropy, g.MinScoreEntropy, "min_score_entropy");
        Above(HealthSignals.ScoreEntropy, Get(HealthSignals.ScoreEntropy), g.MaxScoreEntropy, "max_score_entropy");
        Below(HealthSignals.ImplicitAgreement, g.MinImplicitAgreement, "min_implicit_agreement");
        Below(HealthSignals.MajorityAgreement, g.MinMajorityAgreement, "min_majority_agreement");
        return crossed;
    }

    private static string F(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);
}
