using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Specs;

namespace OnlineAlign.Execution.Phases;

/// <summary>
/// Where each sharded phase may be cut (in prompts): at the batch boundaries the unsharded phase has, known from the spec.
/// A batch whose size the worker plans from its device (sampling.batch_size 0) is not known here; those batches sample
/// tokens, and the engine gives a row the same tokens in any batch (TextGenerator), so any cut keeps their output.
/// </summary>
public static class ShardUnits
{
    /// <summary>The rows a log-prob or reward scorer puts in one forward (ImplicitRewardJudge, RewardModelJudge).</summary>
    public const int ScoringRows = 32;

    /// <summary>Evaluation: one KL row a prompt, in the scorer's chunks (its greedy and sampled answers are tokens: any cut keeps them).</summary>
    public const int Evaluation = RoundPhases.EvalChunkRows;

    /// <summary>Generation: N samples a prompt, sampling.batch_size rows a batch.</summary>
    public static int Generation(RunSpec spec) =>
        spec.Sampling.BatchSize > 0 ? ShardPlan.Unit(spec.SamplesPerPrompt, spec.Sampling.BatchSize) : 1;

    /// <summary>
    /// Judging: the scorers' 32-row chunks of N rows a prompt; the sampled LLM judge's batches of N x judgements rows. The
    /// compact LLM judge (expected score) needs no unit: its scorer is given the whole round and runs the chunks a shard touches.
    /// </summary>
    public static int Judge(RunSpec spec)
    {
        var units = new List<int>();
        if (spec.Judge.ScoresImplicitReward() || spec.Judge.Kind is "likelihood" or "reward_model")
            units.Add(ShardPlan.Unit(spec.SamplesPerPrompt, ScoringRows));
        if (spec.Judge.Kind is "llm" or "self_consistent" && RunSpecMapping.JudgeTemplate(spec) != "compact" && spec.Sampling.BatchSize > 0)
            units.Add(ShardPlan.Unit(spec.SamplesPerPrompt * spec.Judge.Judgements, spec.Sampling.BatchSize));
        return ShardPlan.Combine([.. units]);
    }
}
