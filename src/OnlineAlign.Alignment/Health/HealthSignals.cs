using OnlineAlign.Alignment.Consistency;

namespace OnlineAlign.Alignment.Health;

/// <summary>
/// The label-free health signals a round records (round metrics named health/...): pure arithmetic over scores,
/// log-probabilities and lengths, no models. A signal that cannot be measured (no scored response, no previous
/// round) is NaN, and a NaN never trips the guard (<see cref="GuardDecision"/>).
/// </summary>
public static class HealthSignals
{
    public const string KlInitial = "health/kl_initial";
    public const string KlInitialPerToken = "health/kl_initial_per_token";
    public const string LengthDrift = "health/length_drift";
    public const string ScoreEntropy = "health/score_entropy";
    public const string UnscoredRate = "health/unscored_rate";
    public const string ImplicitAgreement = "health/implicit_agreement";
    /// <summary>
    /// Agreement between the judge and majority voting over the same samples (<see cref="Judges.MajorityJudge"/>): two
    /// label-free scorings that each track correctness where the model can judge, and one of which is noise where it cannot.
    /// </summary>
    public const string MajorityAgreement = "health/majority_agreement";
    public const string JudgeDriftTau = "health/judge_drift_tau";
    /// <summary>Mean length of the evaluate phase's temperature-1 samples, the base of <see cref="LengthDrift"/>.</summary>
    public const string SampleLength = "eval/sample_length_mean";

    /// <summary>
    /// KL(pi || pi_0) estimated per sequence: the mean over sampled responses y ~ pi of sum_t [log pi(y_t) - log pi_0(y_t)]
    /// (the sums of each response's token log-probs under the policy and under the initial policy). NaN without responses.
    /// </summary>
    public static double Kl(IReadOnlyList<double> policyLogProbs, IReadOnlyList<double> initialLogProbs)
    {
        if (policyLogProbs.Count != initialLogProbs.Count)
            throw new ArgumentException($"{policyLogProbs.Count} policy log-probs for {initialLogProbs.Count} initial ones");
        return policyLogProbs.Count == 0 ? double.NaN : policyLogProbs.Zip(initialLogProbs, (a, b) => a - b).Average();
    }

    /// <summary>
    /// The same KL per response token: sum over sampled responses of sum_t [log pi(y_t) - log pi_0(y_t)], divided by their
    /// tokens in all. Per sequence, a bound calibrated on ~10-token answers cannot hold for responses of hundreds of
    /// tokens; per token it does not grow with the length. NaN without responses or tokens.
    /// </summary>
    public static double KlPerToken(IReadOnlyList<double> policyLogProbs, IReadOnlyList<double> initialLogProbs, IReadOnlyList<int> lengths)
    {
        if (policyLogProbs.Count != initialLogProbs.Count || lengths.Count != policyLogProbs.Count)
            throw new ArgumentException($"{policyLogProbs.Count} policy log-probs, {initialLogProbs.Count} initial ones, {lengths.Count} lengths");
        long tokens = lengths.Sum(l => (long)l);
        return tokens == 0 ? double.NaN : policyLogProbs.Zip(initialLogProbs, (a, b) => a - b).Sum() / tokens;
    }

    /// <summary>Relative change of the mean response length since round 0: (L_r - L_0) / L_0; NaN where either is unknown or L_0 is 0.</summary>
    public static double RelativeLengthDrift(double length, double lengthAtRound0) =>
        double.IsFinite(length) && double.IsFinite(lengthAtRound0) && lengthAtRound0 > 0 ? (length - lengthAtRound0) / lengthAtRound0 : double.NaN;

    /// <summary>Adds health/length_drift to a round's metrics: its sampled length against round 0's (NaN where either is missing).</summary>
    public static void AddLengthDrift(IDictionary<string, double> metrics, IReadOnlyDictionary<string, double>? round0) =>
        metrics[LengthDrift] = RelativeLengthDrift(metrics.TryGetValue(SampleLength, out var l) ? l : double.NaN,
            round0 is not null && round0.TryGetValue(SampleLength, out var l0) ? l0 : double.NaN);

    /// <summary>
    /// The judge's score entropy: per prompt, the Shannon entropy of its scored responses' score values (each distinct
    /// value a category) divided by log(scored responses), so 0 is every response scored alike and 1 every score
    /// distinct; the mean over prompts with at least two scored responses (NaN where none has).
    /// </summary>
    public static double NormalisedScoreEntropy(IReadOnlyList<IReadOnlyList<double>> scores)
    {
        var perPrompt = new List<double>();
        foreach (var prompt in scores)
        {
            var scored = prompt.Where(double.IsFinite).ToList();
            if (scored.Count < 2) continue;
            double entropy = scored.GroupBy(v => v).Select(g => (double)g.Count() / scored.Count).Sum(p => -p * Math.Log(p));
            perPrompt.Add(entropy / Math.Log(scored.Count));
        }
        return perPrompt.Count > 0 ? perPrompt.Average() : double.NaN;
    }

    /// <summary>The share of responses left unscored (NaN or infinite score); NaN without responses.</summary>
    public static double Unscored(IReadOnlyList<IReadOnlyList<double>> scores)
    {
        int all = scores.Sum(p => p.Count);
        return all == 0 ? double.NaN : (double)scores.Sum(p => p.Count(v => !double.IsFinite(v))) / all;
    }

    /// <summary>
    /// Agreement between two scorings of the same responses (the LLM judge and the implicit reward): the mean over
    /// prompts of Kendall's tau-b, over prompts where both rank at least two responses (NaN where none does).
    /// </summary>
    public static double Agreement(IReadOnlyList<IReadOnlyList<double>> first, IReadOnlyList<IReadOnlyList<double>> second)
    {
        if (first.Count != second.Count) throw new ArgumentException($"{first.Count} prompts scored against {second.Count}");
        var taus = first.Select((f, i) => (f, s: second[i])).Where(p => RankAgreement.Ranks(p.f, p.s))
            .Select(p => RankAgreement.KendallTauB(p.f, p.s)).ToList();
        return taus.Count > 0 ? taus.Average() : double.NaN;
    }

    /// <summary>
    /// Judge drift on the fixed probe set: the mean over probe prompts of Kendall's tau-b between the current judge's
    /// and the round-0 judge's scores. A prompt whose round-0 scores do not rank (fewer than two responses both judges
    /// scored, or all of those tied) says nothing about drift and is left out; NaN where no prompt is left.
    /// </summary>
    public static double JudgeDrift(IReadOnlyList<IReadOnlyList<double>> current, IReadOnlyList<IReadOnlyList<double>> round0)
    {
        if (current.Count != round0.Count) throw new ArgumentException($"{current.Count} probe prompts scored against {round0.Count}");
        var taus = new List<double>();
        for (int i = 0; i < current.Count; i++)
        {
            var both = Enumerable.Range(0, current[i].Count).Where(k => double.IsFinite(current[i][k]) && double.IsFinite(round0[i][k])).ToList();
            if (both.Count < 2 || both.Select(k => round0[i][k]).Distinct().Count() < 2) continue;
            taus.Add(RankAgreement.KendallTauB(current[i], round0[i]));
        }
        return taus.Count > 0 ? taus.Average() : double.NaN;
    }

    /// <summary>
    /// Agreement between the judge and majority voting: the mean over prompts of Kendall's tau-b between the judge's scores
    /// and the votes, over prompts where the votes rank the samples (at least two distinct vote shares among scored ones).
    /// A prompt whose samples all give one answer, or all different ones, has nothing for the judge to agree with, and
    /// counting it as tau 0 would pull easy and hard tasks alike towards 0. NaN where no prompt has a ranking vote.
    /// </summary>
    public static double VoteAgreement(IReadOnlyList<IReadOnlyList<double>> judge, IReadOnlyList<IReadOnlyList<double>> votes)
    {
        if (judge.Count != votes.Count) throw new ArgumentException($"{judge.Count} prompts scored against {votes.Count} voted");
        // Two distinct vote shares among responses both scored means at least two of them: Agreement's own test then holds.
        var ranked = Enumerable.Range(0, judge.Count)
            .Where(i => votes[i].Where((v, k) => double.IsFinite(v) && double.IsFinite(judge[i][k])).Distinct().Count() > 1).ToList();
        return Agreement(ranked.Select(i => judge[i]).ToList(), ranked.Select(i => votes[i]).ToList());
    }
}
