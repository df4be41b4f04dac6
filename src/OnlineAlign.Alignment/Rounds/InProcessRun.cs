using OnlineAlign.Alignment.Consistency;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
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

    public void Dispose()
    {
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
        void Lap(string phase) { metrics[$"time/{phase}"] = clock.Elapsed.TotalSeconds; clock.Restart(); }

        progress?.Invoke("generate", 0, x.Prompts.Count);
        // Responses sampled earlier (the generate phase, possibly sharded over replicas) are used as they are.
        var groups = x.Responses is null
            ? RoundPhases.Generate(models.Policy, x.Tokenizer, x.Prompts, x.PromptIndices, s, x.Seed, x.Round)
            : RoundPhases.Groups(x.Tokenizer, x.Prompts, x.Responses);
        var lengths = groups.SelectMany(g => g.ResponseIds.Select(r => (double)r.Length)).ToList();
        metrics["generation/length_mean"] = lengths.Average();
        metrics["generation/eos_rate"] = groups.SelectMany(g => g.ResponseIds).Average(r => r.Length > 0 && r[^1] == x.Tokenizer.EosId ? 1.0 : 0.0);

        Lap("generate");
        progress?.Invoke("judge", 0, groups.Count);
        var current = Judge(s, models.Policy, models.TrainedFrom, x).Score(groups);
        // Fixed judges (a verifier, a reward model) rank the same way every round: consistency only applies to self-judging.
        var previous = models.TrainedFrom is null || s.Consistency == "none" || s.Judge is "verifier" or "reward_model"
            ? null : Judge(s, models.TrainedFrom, models.TrainedFromBefore, x).Score(groups);
        var finite = current.Scores.SelectMany(v => v).Where(double.IsFinite).ToList();
        metrics["judge/score_mean"] = finite.Count > 0 ? finite.Average() : double.NaN;
        metrics["judge/score_std"] = finite.Count > 0 ? Math.Sqrt(finite.Average(v => Math.Pow(v - finite.Average(), 2))) : double.NaN;
        metrics["judge/parse_failures"] = current.ParseFailures;
        if (x.Task is not null && s.Judge != "verifier")
        {
            // How well the self-judge ranks like the verifier, on prompts where the verifier separates responses.
            var truth = new VerifierJudge(x.Task).Score(groups).Scores;
            var taus = truth.Select((t, i) => (t, i)).Where(p => p.t.Distinct().Count() > 1)
                .Select(p => RankAgreement.KendallTauB(current.Scores[p.i], p.t)).ToList();
            metrics["judge/tau_vs_verifier"] = taus.Count > 0 ? taus.Average() : double.NaN;
        }
        if (x.Task is not null)
            metrics["generation/accuracy"] = new VerifierJudge(x.Task).Score(groups).Scores.SelectMany(v => v).Average();

        var (consistency, meanTau) = RoundPhases.Consistency(current.Scores.ToList(), previous?.Scores.ToList(), s.Consistency);
        metrics["consistency/C"] = consistency.Average();
        metrics["consistency/tau"] = meanTau;

        Lap("judge");
        progress?.Invoke("pairs", 0, groups.Count);
        var reference = x.ReferenceStrategy == "initial" ? models.Initial : models.Policy;
        var (examples, stats, _) = RoundPhases.BuildPairs(groups, current.Scores.ToList(), consistency, s, reference, (int)(x.Seed % int.MaxValue) + x.Round, pad);
        metrics["pairs/kept"] = stats.Pairs;
        metrics["pairs/dropped_all_equal"] = stats.AllEqual;
        metrics["pairs/dropped_min_gap"] = stats.BelowMinimumGap;
        metrics["lengths/chosen"] = examples.Count > 0 ? examples.Average(e => e.Chosen.Length) : double.NaN;
        metrics["lengths/rejected"] = examples.Count > 0 ? examples.Average(e => e.Rejected.Length) : double.NaN;

        Lap("pairs");
        // The model at the round's start becomes "trained from" for the next round's judge.
        var roundStart = BuiltinModels.Clone(models.Policy);
        progress?.Invoke("train", 0, 1);
        var steps = PreferenceTrainer.Train(models.Policy, examples,
            new PreferenceTrainer.Settings(s.Loss, s.Optimizer, s.Epochs, s.BatchSize, (int)(x.Seed % int.MaxValue) + x.Round), pad,
            (done, total) => progress?.Invoke("train", done, total));
        foreach (var key in steps.FirstOrDefault()?.Named().Keys ?? [])
            metrics[key] = steps.Average(st => st.Named()[key]);

        Lap("train");
        progress?.Invoke("evaluate", 0, x.EvalPrompts.Count);
        foreach (var (k, v) in RoundPhases.Evaluate(models.Policy, x.ReferenceStrategy == "initial" ? models.Initial : roundStart,
                     models.Initial, x.Tokenizer, x.Task, x.EvalPrompts, s.EvalMaxNewTokens, x.Seed + (ulong)x.Round))
            metrics[k] = v;

        Lap("evaluate");
        models.TrainedFromBefore?.Dispose();
        models.TrainedFromBefore = models.TrainedFrom;
        models.TrainedFrom = roundStart;

        var warnings = RoundWarnings.For(metrics, x.Earlier.LastOrDefault()?.Metrics, x.Earlier.FirstOrDefault()?.Metrics);
        return new RoundReport(x.Round, metrics, warnings, steps);
    }

    private static IJudge Judge(RoundSettings s, DecoderLM policy, DecoderLM? trainedFrom, Inputs x) => s.Judge switch
    {
        "verifier" => new VerifierJudge(x.Task ?? throw new ArgumentException("judge.kind 'verifier' needs a task with answers")),
        "implicit" => new ImplicitRewardJudge(policy, trainedFrom, Math.Max(0, x.Tokenizer.PadId)),
        "reward_model" => new RewardModelJudge(x.Reward ?? throw new ArgumentException("judge.kind 'reward_model' needs judge.reward_model_folder"), Math.Max(0, x.Tokenizer.PadId)),
        "llm" => new LlmJudge(policy, x.Tokenizer, PromptTemplate.Plain, s.Judgements,
            new SamplingOptions { Temperature = 0.7, TopP = 0.95, MaxNewTokens = 64, Seed = x.Seed + (ulong)x.Round }),
        _ => throw new ArgumentException($"judge.kind '{s.Judge}' is not one of {string.Join(", ", RoundSettings.JudgeKinds)}"),
    };
}
