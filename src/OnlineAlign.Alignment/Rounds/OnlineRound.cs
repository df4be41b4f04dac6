using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;

namespace OnlineAlign.Alignment.Rounds;

/// <summary>The models a run carries from round to round.</summary>
public sealed class RunModels : IDisposable
{
    /// <summary>The policy, trained in place; P_r at the start of round r.</summary>
    public required DecoderLM Policy { get; init; }
    /// <summary>The policy the run started from (after warm-start SFT).</summary>
    public required DecoderLM Initial { get; init; }
    /// <summary>P_{r-1}: the model the current policy was trained from (null before the first update).</summary>
    public DecoderLM? TrainedFrom { get; set; }
    /// <summary>P_{r-2}: what P_{r-1} was trained from; the previous round's judge needs it.</summary>
    public DecoderLM? TrainedFromBefore { get; set; }
    /// <summary>AdamW's moments, carried from round to round when the settings ask for it.</summary>
    public OptimizerState Optimizer { get; } = new();

    public void Dispose()
    {
        Optimizer.Dispose();
        Policy.Dispose();
        Initial.Dispose();
        TrainedFrom?.Dispose();
        TrainedFromBefore?.Dispose();
    }
}

/// <summary>
/// One online round in one process: generate -> judge (+ previous judge for consistency) -> pairs with
/// reference log-probs -> train -> evaluate. The reference is the policy at the round's start
/// ("previous_round", CREAM/Self-Rewarding) or the initial policy ("initial").
/// </summary>
public static class OnlineRound
{
    public sealed record Inputs(RoundSettings Settings, ITextTokenizer Tokenizer, IVerifiableTask? Task,
        IReadOnlyList<PromptItem> Prompts, IReadOnlyList<int> PromptIndices, IReadOnlyList<PromptItem> EvalPrompts,
        string ReferenceStrategy, ulong Seed, int Round, IReadOnlyList<RoundReport> Earlier,
        IReadOnlyList<IReadOnlyList<int[]>>? Responses = null, RewardModel? Reward = null);

    public static RoundReport Run(RunModels models, Inputs x, Action<string, int, int>? progress = null)
    {
        var s = x.Settings;
        int pad = Math.Max(0, x.Tokenizer.PadId);
        var metrics = new Dictionary<string, double>();
        // Wall time per phase, so users see where a round's time goes (time/generate, time/judge, ...).
        var clock = System.Diagnostics.Stopwatch.StartNew();
        void Lap(string phase, Dictionary<string, double>? phaseMetrics = null)
        {
            foreach (var (k, v) in phaseMetrics ?? []) metrics[k] = v;
            metrics[$"time/{phase}"] = clock.Elapsed.TotalSeconds;
            clock.Restart();
        }

        progress?.Invoke("generate", 0, x.Prompts.Count);
        // Responses sampled earlier (the generate phase, possibly sharded over replicas) are used as they are.
        var groups = x.Responses is null
            ? RoundPhases.Generate(models.Policy, x.Tokenizer, x.Prompts, x.PromptIndices, s, x.Seed, x.Round)
            : RoundPhases.Groups(x.Tokenizer, x.Prompts, x.Responses);
        Lap("generate");

        progress?.Invoke("judge", 0, groups.Count);
        var judged = RoundPhases.Judge(groups,
            JudgeFactory.Create(s, models.Policy, JudgeFactory.ImplicitReference(x.ReferenceStrategy, models.TrainedFrom, models.Initial, x.Round == 1),
                x.Tokenizer, x.Task, x.Reward, x.Seed, x.Round),
            JudgeFactory.Previous(s, models.TrainedFrom, JudgeFactory.ImplicitReference(x.ReferenceStrategy, models.TrainedFromBefore, models.Initial, x.Round == 2),
                x.Tokenizer, x.Task, x.Seed, x.Round),
            s, x.Task, x.Tokenizer.EosId);
        Lap("judge", judged.Metrics);

        progress?.Invoke("pairs", 0, groups.Count);
        var reference = x.ReferenceStrategy == "initial" ? models.Initial : models.Policy;
        var pairs = RoundPhases.Pairs(groups, judged, s, reference, x.Seed, x.Round, pad);
        Lap("pairs", pairs.Metrics);

        // The model at the round's start becomes "trained from" for the next round's judge.
        var roundStart = BuiltinModels.Clone(models.Policy);
        progress?.Invoke("train", 0, 1);
        var trained = RoundPhases.Train(models.Policy, pairs, s, x.Seed, x.Round, pad,
            (done, total) => progress?.Invoke("train", done, total), s.CarryOptimizerState ? models.Optimizer : null);
        Lap("train", trained.Metrics);

        progress?.Invoke("evaluate", 0, x.EvalPrompts.Count);
        Lap("evaluate", RoundPhases.Evaluate(models.Policy, x.ReferenceStrategy == "initial" ? models.Initial : roundStart,
            models.Initial, x.Tokenizer, x.Task, x.EvalPrompts, s.EvalMaxNewTokens, x.Seed + (ulong)x.Round,
            s.GenerationBatchSize));

        models.TrainedFromBefore?.Dispose();
        models.TrainedFromBefore = models.TrainedFrom;
        models.TrainedFrom = roundStart;

        var warnings = RoundWarnings.For(metrics, x.Earlier.LastOrDefault()?.Metrics, x.Earlier.FirstOrDefault()?.Metrics);
        return new RoundReport(x.Round, metrics, warnings, trained.Steps);
    }
}
