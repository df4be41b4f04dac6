namespace OnlineAlign.Alignment.Pairs;

/// <summary>A preference pair: indices into one prompt's responses, with its label weight.</summary>
/// <param name="Consistency">CREAM's C for this pair's prompt (1 = a hard label).</param>
/// <param name="Stage">Curriculum stage (0 = easiest); pairs train stage after stage. 0 for the other strategies.</param>
public sealed record PreferencePair(int PromptIndex, int Chosen, int Rejected, double ScoreGap, double Consistency = 1.0, int Stage = 0);

/// <summary>How many prompts gave no pair, and why (Disagreements: pairs a second judge ordered the other way).</summary>
public sealed record PairStatistics(int Prompts, int Pairs, int AllEqual, int BelowMinimumGap, int Disagreements = 0);

/// <summary>
/// Turns per-prompt scores of N responses into preference pairs. A response scored NaN (no valid
/// judgement) takes part in no pair. Prompts whose scored responses all score the same (or whose best and
/// worst are closer than the minimum gap) give no pair and are counted.
/// </summary>
public static class PairBuilder
{
    /// <summary>
    /// "random" is a control, not a recipe: two of the prompt's scored responses in random order, from the same prompts
    /// best_vs_worst pairs, so a DPO step on it separates "any DPO step on the policy's samples helps" from the judge's signal.
    /// "shuffled_scores" is a control too: each prompt's scores permuted among its scored responses, then best_vs_worst on
    /// them. The pairs are as random as "random"'s, but a loss that reads the scores themselves (SPPO's win-rate targets)
    /// still sees the judge's score distribution, detached from the responses: what such a loss gains without the signal.
    /// </summary>
    public static readonly string[] Strategies = ["best_vs_worst", "best_vs_random", "curriculum", "random", ShuffledScores];

    public const string ShuffledScores = "shuffled_scores";

    /// <summary>
    /// The scores a strategy builds its pairs on, which a loss reading scores must read too: for "shuffled_scores" each
    /// prompt's finite scores permuted among its scored responses (unscored ones stay unscored), a permutation drawn from
    /// the seed and the prompt's index; for every other strategy the scores themselves.
    /// </summary>
    public static IReadOnlyList<double[]> ScoresSeenBy(string strategy, IReadOnlyList<double[]> scores, int seed)
    {
        if (strategy != ShuffledScores) return scores;
        return scores.Select((row, p) =>
        {
            var random = new Random(unchecked(seed * 1_000_003 + p));
            var positions = Enumerable.Range(0, row.Length).Where(i => !double.IsNaN(row[i])).ToArray();
            var values = positions.Select(i => row[i]).ToArray();
            random.Shuffle(values);
            var shuffled = (double[])row.Clone();
            for (int k = 0; k < positions.Length; k++) shuffled[positions[k]] = values[k];
            return shuffled;
        }).ToList();
    }

    public static (List<PreferencePair> Pairs, PairStatistics Statistics) Build(
        IReadOnlyList<IReadOnlyList<double>> scores, string strategy, double minimumGap, int seed)
    {
        if (strategy == ShuffledScores)
            scores = ScoresSeenBy(strategy, scores.Select(r => r.ToArray()).ToList(), seed).Select(r => (IReadOnlyList<double>)r).ToList();
        var random = new Random(seed);
        var pairs = new List<PreferencePair>();
        int allEqual = 0, belowGap = 0;
        for (int p = 0; p < scores.Count; p++)
        {
            var s = scores[p];
            var scored = Enumerable.Range(0, s.Count).Where(i => !double.IsNaN(s[i])).ToList();
            if (scored.Count < 2) { allEqual++; continue; }
            int best = scored[0], worst = scored[0];
            foreach (int i in scored)
            {
                if (s[i] > s[best]) best = i;
                if (s[i] < s[worst]) worst = i;
            }
            double gap = s[best] - s[worst];
            if (gap == 0) { allEqual++; continue; }
            if (gap < minimumGap) { belowGap++; continue; }
            switch (strategy)
            {
                case "best_vs_worst":
                case ShuffledScores:
                    pairs.Add(new PreferencePair(p, best, worst, gap));
                    break;
                case "best_vs_random":
                    var lower = scored.Where(i => s[best] - s[i] >= Math.Max(minimumGap, double.Epsilon)).ToList();
                    int rejected = lower[random.Next(lower.Count)];
                    pairs.Add(new PreferencePair(p, best, rejected, s[best] - s[rejected]));
                    break;
                case "curriculum":
                    // Curry-DPO: the best response against each other one, the k-th largest gap in stage k.
                    var others = scored.Where(j => j != best && s[best] - s[j] >= Math.Max(minimumGap, double.Epsilon))
                        .OrderByDescending(j => s[best] - s[j]).ThenBy(j => j).ToList();
                    pairs.AddRange(others.Select((j, stage) => new PreferencePair(p, best, j, s[best] - s[j], Stage: stage)));
                    break;
                case "random":
                    // The same prompts best_vs_worst pairs (a gap the judge saw), the pair and its order drawn without the scores.
                    int a = random.Next(scored.Count), b = random.Next(scored.Count - 1);
                    if (b >= a) b++;
                    pairs.Add(new PreferencePair(p, scored[a], scored[b], s[scored[a]] - s[scored[b]]));
                    break;
                default:
                    throw new ArgumentException($"pair strategy '{strategy}' is not one of {string.Join(", ", Strategies)}");
            }
        }
        // Curriculum: stage by stage, easy (large gap) to hard (small gap); a stable order keeps runs reproducible.
        if (strategy == "curriculum") pairs = pairs.OrderBy(x => x.Stage).ThenBy(x => x.PromptIndex).ToList();
        return (pairs, new PairStatistics(scores.Count, pairs.Count, allEqual, belowGap));
    }
}
