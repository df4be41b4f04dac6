using OnlineAlign.Alignment.Health;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Execution.Phases;

/// <summary>
/// health/judge_drift_tau: a fixed probe set of responses judged by the round's judge and by the round-0 judge (the
/// one round 1 had: the initial policy judging), compared with Kendall's tau. The probe set is round 1's samples of
/// its first guard.probe_prompts prompts, drawn from the initial policy with round 1's seeds; it is drawn again,
/// identically, in every round's judge phase rather than stored, so a round needs no other round's outputs. Both
/// judges score it with the same sampling seed (round 1's), so the tau measures the judge's change, not sampling noise.
/// </summary>
public static class JudgeProbe
{
    /// <param name="judgeAt">the round's judge as its policy judges, built with a given round's seed</param>
    /// <param name="round0Judge">the round-0 judge (built with round 1's seed)</param>
    public static double DriftTau(RoundJob.Context c, ITextTokenizer tokenizer, DecoderLM initial, Func<int, IJudge> judgeAt, Func<IJudge> round0Judge)
    {
        int k = Math.Min(c.Spec.Guard.ProbePrompts, c.Spec.PromptsPerRound);
        if (k == 0) return double.NaN;
        var (_, prompts, indices) = RoundJob.RoundPrompts(c.Spec, 1);
        var probe = RoundPhases.Generate(initial, tokenizer, prompts.Take(k).ToList(), indices.Take(k).ToList(), c.Settings, c.Spec.Seed, 1, c.Cancellation);
        var round0 = round0Judge().Score(probe, c.Cancellation).Scores.Select(v => (IReadOnlyList<double>)v).ToList();
        // Round 1's judge is the round-0 judge: scored once.
        var current = c.Request.Policy.Sha256 == c.Request.Initial.Sha256 ? round0
            : judgeAt(1).Score(probe, c.Cancellation).Scores.Select(v => (IReadOnlyList<double>)v).ToList();
        return HealthSignals.JudgeDrift(current, round0);
    }
}
