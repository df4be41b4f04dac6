namespace OnlineAlign.Alignment.Rounds;

/// <summary>The warning signs users ask about, read off consecutive rounds' metrics.</summary>
public static class RoundWarnings
{
    public static List<string> For(Dictionary<string, double> current, Dictionary<string, double>? previous, Dictionary<string, double>? first)
    {
        var warnings = new List<string>();
        if (Get(current, "rewards/accuracies") >= 0.99 && previous is not null
            && Get(current, "rewards/margins") > Get(previous, "rewards/margins") && Get(previous, "rewards/accuracies") >= 0.99)
            warnings.Add($"rewards/accuracies stays at {Get(current, "rewards/accuracies"):F2} while rewards/margins keep growing " +
                         $"({Get(previous, "rewards/margins"):F3} -> {Get(current, "rewards/margins"):F3}): the policy may be over-fitting the " +
                             $"pairs; consider a larger beta or IPO");
        if (current.TryGetValue("judge/score_std", out var std) && std < 1e-6)
            warnings.Add($"judge scores collapsed to one value ({Get(current, "judge/score_mean"):F4}): no preference signal this round");
        if (Get(current, "judge/unscored_rate") > 0.1)
            warnings.Add($"the judge left {Get(current, "judge/unscored_rate") * 100:F0}% of the responses unscored (no score in its judgement): " +
                         "they take part in no pair; judgements cut off before their score are the usual cause (judge.max_new_tokens)");
        if (first is not null && Get(first, "generation/length_mean") > 0)
        {
            double ratio = Get(current, "generation/length_mean") / Get(first, "generation/length_mean");
            if (ratio > 1.5 || ratio < 0.67)
                warnings.Add($"response length drifted from {Get(first, "generation/length_mean"):F1} to " +
                    $"{Get(current, "generation/length_mean"):F1} tokens since the first round");
        }
        return warnings;
    }

    private static double Get(Dictionary<string, double> m, string key) => m.TryGetValue(key, out var v) ? v : double.NaN;
}
