using OnlineAlign.Alignment.Training;

namespace OnlineAlign.Alignment.Rounds;

/// <summary>What the judge phase hands on: scores per prompt and response, CREAM's per-prompt consistency C, and metrics.</summary>
/// <param name="Agreement">a second judge's scores each pair must agree with (judge "self_consistent"), or null</param>
public sealed record JudgeOutcome(double[][] Scores, double[] Consistency, Dictionary<string, double> Metrics, double[][]? Agreement = null);

/// <summary>
/// One judge shard's raw scores for its prompts (positions in the round), before any metric: the judge phase merges the
/// shards (every prompt exactly once) and computes C and the metrics once, from the merged arrays.
/// </summary>
/// <param name="Previous">the previous round's judge's scores (CREAM's consistency pass), or null where it does not apply</param>
/// <param name="ParseFailures">the shard's unparsable LLM judgements (a count: shards' counts add up exactly)</param>
/// <param name="DriftTau">health/judge_drift_tau, which depends on no prompt of the round: computed by shard 0 alongside its prompts
/// (so the merge loads no judge), null in the other shards and in shards written before shard 0 carried it</param>
/// <param name="Pairwise">judge/pairwise_accuracy and judge/pairwise_count, carried by shard 0 as DriftTau is (empty: no pairwise set)</param>
public sealed record JudgeScores(List<int> Positions, double[][] Scores, double[][]? Previous, double[][]? Agreement, int ParseFailures,
    double? DriftTau = null, Dictionary<string, double>? Pairwise = null)
{
    /// <summary>The shards in prompt order; a prompt missing or in two shards is refused.</summary>
    public static JudgeScores Merge(IReadOnlyList<JudgeScores> shards, int prompts)
    {
        double[][]? Merged(Func<JudgeScores, double[][]?> part, string what)
        {
            int with = shards.Count(s => part(s) is not null);
            if (with == 0) return null;
            if (with != shards.Count) throw new InvalidDataException($"judge shards disagree on whether they carry {what}");
            return ShardPlan.Merge(shards.Select(s => ((IReadOnlyList<int>)s.Positions, (IReadOnlyList<double[]>)part(s)!)), prompts, $"judge {what}");
        }
        var drift = shards.Where(s => s.DriftTau is not null).ToList();
        if (drift.Count > 1) throw new InvalidDataException($"{drift.Count} judge shards carry the judge-drift probe: one should");
        return new JudgeScores(Enumerable.Range(0, prompts).ToList(), Merged(s => s.Scores, "scores")!, Merged(s => s.Previous, "previous scores"),
            Merged(s => s.Agreement, "agreement scores"), shards.Sum(s => s.ParseFailures), drift.FirstOrDefault()?.DriftTau,
            drift.FirstOrDefault()?.Pairwise);
    }
}

/// <summary>The pairs phase's plan: the round's pairs (with C per prompt) whose reference log-probs are still to compute.</summary>
/// <param name="RowsPerPair">2 (chosen, rejected), or 3 with SELM's exploration response</param>
public sealed record PairPlan(IReadOnlyList<OnlineAlign.Alignment.Judges.ResponseGroup> Groups, IReadOnlyList<double[]> Scores, double[] Consistency,
    List<OnlineAlign.Alignment.Pairs.PreferencePair> Pairs, OnlineAlign.Alignment.Pairs.PairStatistics Statistics, int RowsPerPair);

/// <summary>One pairs shard's reference log-prob sums: the pairs at its positions (indices into the round's pairs), [pair][row].</summary>
public sealed record PairShard(List<int> Positions, double[][] Sums);

/// <summary>
/// One evaluation shard's per-prompt results (positions in the evaluation set): the greedy answer's check (NaN without a
/// checker), length and stop, and one sample's log-prob sums under the policy, the reference and the initial model.
/// </summary>
public sealed record EvalShard(List<int> Positions, double[] Correct, int[] GreedyLengths, bool[] Stopped, double[] Own, double[] Reference,
    double[] Initial, int[] SampleLengths)
{
    /// <summary>The shards in evaluation-prompt order; a prompt missing or in two shards is refused.</summary>
    public static EvalShard Merge(IReadOnlyList<EvalShard> shards, int prompts)
    {
        T[] M<T>(Func<EvalShard, T[]> part, string what) =>
            ShardPlan.Merge(shards.Select(s => ((IReadOnlyList<int>)s.Positions, (IReadOnlyList<T>)part(s))), prompts, $"evaluation {what}");
        return new EvalShard(Enumerable.Range(0, prompts).ToList(), M(s => s.Correct, "checks"), M(s => s.GreedyLengths, "lengths"), M(s => s.Stopped, "stops"),
            M(s => s.Own, "policy log-probs"), M(s => s.Reference, "reference log-probs"),
            M(s => s.Initial, "initial log-probs"), M(s => s.SampleLengths, "sample lengths"));
    }
}

/// <summary>What the pairs phase hands on: training pairs with reference log-probs and C, and metrics.</summary>
public sealed record PairsOutcome(List<PairExample> Examples, Dictionary<string, double> Metrics);

/// <summary>What the train phase reports: per-step metrics and their means under TRL's names.</summary>
public sealed record TrainOutcome(List<StepMetrics> Steps, Dictionary<string, double> Metrics);
