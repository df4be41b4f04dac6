using System.Diagnostics;
using System.Globalization;
using OnlineAlign.Alignment.Health;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Contracts;
using OnlineAlign.Alignment.Controls;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Pairs;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Execution.InProcess;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Specs;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// Does online alignment help? Warm-start a tiny model (pretraining, then IFT + EFT) on a built-in task, then run online
/// rounds with each arm's judge, loss and pairs; several seeds. The run evaluates on the validation stream (what a recipe,
/// its rounds and hyperparameters are chosen on); every round's policy is also evaluated on the test stream, which only
/// reports (docs/experiments.md: the protocol). Controls run beside the recipes: DPO on random pairs of the same samples,
/// RFT on the judge's best sample, as many extra SFT steps as a round takes, and best-of-8 reranking by the same judge.
/// </summary>
public static class AlignmentExperiment
{
    public sealed record Settings(string Task, int Rounds, int[] Seeds, int PromptsPerRound, int EvalPrompts, int SftSteps,
        double Noise, double LearningRate, double Beta, int Samples, string[] Methods, double RpoAlpha = 0, int Epochs = 1, int EftExamples = 0,
            string Reference = "previous_round", double SelmAlpha = 0.01, int PretrainSteps = 200, int BestOf = 8, string Model = "tiny",
            double SftLearningRate = 3e-3, GuardSpec? Guard = null, string? ArmLogs = null, string Header = "");

    /// <summary>An arm's judge, loss, consistency regularisation and pair strategy.</summary>
    /// <param name="EftSource">where the warm start's EFT examples come from (spec eft_source): an arm that changes it has its own round 0</param>
    /// <param name="ImplicitAgreement">judge.implicit_agreement: the LLM judge also records the implicit reward's agreement (pairs unchanged)</param>
    public sealed record Arm(string Judge, string Loss, string Consistency, string Pairs = "best_vs_worst", string EftSource = "corruptions",
        bool ImplicitAgreement = false);

    /// <summary>The arms run by the product's own phases; <see cref="ExtraSftArm"/> and <see cref="BestOfArm"/> are experiment-only controls.</summary>
    public static readonly IReadOnlyDictionary<string, Arm> Arms = new Dictionary<string, Arm>
    {
        ["verifier"] = new("verifier", "dpo", "none"),                 // labels: the upper bound
        ["self"] = new("implicit", "dpo", "none"),                     // implicit reward, no regularisation
        ["cream"] = new("implicit", "cream", "dyn"),                   // CREAM
        ["cream-avg"] = new("implicit", "cream", "avg"),               // CREAM, C averaged over the round
        ["llm"] = new("llm", "dpo", "none"),                           // Self-Rewarding: LLM-as-a-judge after IFT+EFT
        ["cream-llm"] = new("llm", "cream", "dyn"),                    // CREAM with the LLM judge
        ["frozen-llm"] = new("llm", "dpo", "none"),                    // the warm-started model judges every round (judge.model initial)
        ["self-consistent"] = new("self_consistent", "dpo", "none"),   // LLM judge pairs where the implicit reward agrees
        ["sppo"] = new("llm", "sppo", "none"),                         // SPPO's soft win-rate target, LLM judge scores
        ["selm"] = new("llm", "dpo", "none"),                          // SELM: DPO + optimism term (--selm-alpha)
        // The default (sppo) with EFT built as Self-Rewarding builds it: the warm-started model's own samples, checker-scored.
        ["sppo-own-eft"] = new("llm", "sppo", "none", EftSource: "own_samples"),
        // The default measuring health/implicit_agreement beside its judge (the same pairs and updates as sppo): the guard's data.
        ["sppo-ia"] = new("llm", "sppo", "none", ImplicitAgreement: true),
        ["majority"] = new("majority", "dpo", "none"),
        ["likelihood"] = new("likelihood", "dpo", "none"),
        ["cream-likelihood"] = new("likelihood", "cream", "dyn"),
        // Controls (docs/experiments.md): the llm arm's samples, paired at random (any DPO step, no judge signal) ...
        ["random-llm"] = new("llm", "dpo", "none", "random"),
        // ... and rejection-sampling fine-tuning on the LLM judge's best sample (its signal, no preference loss).
        ["rft-llm"] = new("llm", "rft", "none"),
        // ... and SPPO's loss on the sppo arm's samples with each prompt's scores permuted: its targets keep the judge's score
        // distribution but not which sample earned which score (what "any SPPO step" gains).
        ["shuffled-sppo"] = new("llm", "sppo", "none", PairBuilder.ShuffledScores),
    };

    /// <summary>Control: the round's optimiser steps spent on more SFT on the warm start's kind of data (no judge, no samples).</summary>
    public const string ExtraSftArm = "sft-extra";
    /// <summary>Control: no training; the warm-started policy's best of N samples by its own LLM judge, at test time.</summary>
    public const string BestOfArm = "best-of-8";

    /// <summary>The run spec of one arm: the product's own spec, run through the product's own phases (InProcessRun).</summary>
    public static RunSpec Spec(Settings s, string method, int seed)
    {
        var arm = Arms.TryGetValue(method, out var a) ? a : Arms["llm"]; // the experiment-only controls share the llm arm's warm start
        return new()
        {
            Name = method, Prompts = new() { Task = s.Task, EvalPrompts = s.EvalPrompts, EvalStream = "validation" }, Seed = (ulong)seed,
            Model = new() { Builtin = s.Model, PretrainSteps = s.PretrainSteps },
            SftSteps = s.SftSteps, SftNoise = s.Noise, SftLearningRate = s.SftLearningRate, Rounds = s.Rounds,
            PromptsPerRound = s.PromptsPerRound, SamplesPerPrompt = s.Samples, Device = "cpu",
            Consistency = arm.Consistency, EftExamples = s.EftExamples, EftSource = arm.EftSource, Reference = s.Reference, PairStrategy = arm.Pairs,
            Judge = new() { Kind = arm.Judge, Model = method.StartsWith("frozen", StringComparison.Ordinal) ? "initial" : "policy",
                ImplicitAgreement = arm.ImplicitAgreement },
            Loss = new() { Kind = arm.Loss, Beta = s.Beta, RpoAlpha = s.RpoAlpha, SelmAlpha = method == "selm" ? s.SelmAlpha : 0 },
            Optimizer = new() { Epochs = s.Epochs, LearningRate = s.LearningRate, WeightDecay = 0, BatchSize = 16 },
            Guard = s.Guard ?? new(),
        };
    }

    /// <summary>The test stream's prompts of a spec (the same count as its validation prompts).</summary>
    public static IReadOnlyList<PromptItem> TestPrompts(RunSpec spec) =>
        RunSpecMapping.EvalPrompts(spec with { Prompts = spec.Prompts with { EvalStream = "test" } });

    public static void Run(Settings s, TextWriter report)
    {
        var table = new Dictionary<(string Method, int Seed), List<(double Validation, double Test)>>();
        string folder = Path.Combine(Path.GetTempPath(), "onlinealign-experiment-" + Guid.NewGuid().ToString("N")[..8]);
        foreach (var method in s.Methods)
            if (!Arms.ContainsKey(method) && method is not (ExtraSftArm or BestOfArm))
                throw new ArgumentException($"arm '{method}' is not one of {string.Join(", ", Arms.Keys.Append(ExtraSftArm).Append(BestOfArm))}");
        foreach (int seed in s.Seeds)
        {
            // A seed's arms share its warm start (equal settings give equal weights): the first arm trains it, the others
            // copy its round 0 (InProcessRun.PrepareFrom), so a control beside its arm costs its rounds, not another warm start.
            (InProcessRun Run, string Method)? first = null;
            try
            {
                foreach (var method in s.Methods)
                {
                    var run = new InProcessRun(Spec(s, method, seed), Path.Combine(folder, $"{method}-{seed}"), pretrainedCache: Path.Combine(folder, "m0"));
                    using (var armLog = ArmLog(s, method, seed))
                        table[(method, seed)] = RunArm(s, method, seed, run, first, armLog is null ? report : new TeeWriter(report, armLog));
                    if (first is null) first = (run, method); // kept (its round 0) until the seed's last arm is done
                    else Discard(run, folder, method, seed);
                }
            }
            finally
            {
                if (first is { } kept) Discard(kept.Run, folder, kept.Method, seed);
            }
        }

        var streams = new (string, Func<(double Validation, double Test), double>)[] { ("Validation", r => r.Validation), ("Test", r => r.Test) };
        foreach (var (stream, pick) in streams)
        {
            report.WriteLine();
            report.WriteLine($"{stream} accuracy (mean over seeds {string.Join(", ", s.Seeds)} with its 95% t-interval; greedy, {s.EvalPrompts} prompts):");
            report.WriteLine();
            report.WriteLine("| method | " + string.Join(" | ", Enumerable.Range(0, s.Rounds + 1).Select(r => $"round {r}")) + " |");
            report.WriteLine("|---|" + string.Concat(Enumerable.Repeat("---|", s.Rounds + 1)));
            foreach (var method in s.Methods)
                report.WriteLine($"| {method} | " + string.Join(" | ", Enumerable.Range(0, s.Rounds + 1).Select(r =>
                    Interval(s.Seeds.Where(seed => table[(method, seed)].Count > r).Select(seed => pick(table[(method, seed)][r])).ToList()))) + " |");
        }
        report.WriteLine();
        report.WriteLine("align_summary.py turns the logs into the paired tables (each arm against round 0 and against the llm arm, chosen on validation).");
    }

    /// <summary>One arm on one seed: round 0 (its own warm start, or a copy of <paramref name="source"/>'s where they are made
    /// alike) and its rounds, each logged; returns every round's validation and test accuracy.</summary>
    private static List<(double Validation, double Test)> RunArm(Settings s, string method, int seed, InProcessRun run,
        (InProcessRun Run, string Method)? source, TextWriter report)
    {
        var watch = Stopwatch.StartNew();
        bool copied = source is { } from && RunSpecMapping.WarmStartDifferences(run.Spec, from.Run.Spec).Count == 0;
        var initial = copied ? run.PrepareFrom(source!.Value.Run) : run.Prepare();
        var rows = new List<(double, double)> { (initial.Metrics["eval/accuracy"], TestAccuracy(run, 0)) };
        report.WriteLine($"seed {seed} {method}: round 0 {(copied ? $"copied from {source!.Value.Method}'s " : "")}({s.Model} model, pretraining {s.PretrainSteps} steps, " +
                         $"SFT {s.SftSteps} steps at lr {s.SftLearningRate:G3} on {s.Noise:P0}-noisy demonstrations): " +
                         $"validation accuracy {rows[0].Item1:P1}, test accuracy {rows[0].Item2:P1}, " +
                         $"judge pairwise accuracy {Get(initial, "judge/pairwise_accuracy"):F3} ({watch.Elapsed.TotalSeconds:F0} s)");
        using var frozen = method is BestOfArm or ExtraSftArm ? null : new FrozenJudge(run);
        if (frozen is not null) report.WriteLine(frozen.Line(run, 0));
        if (method == BestOfArm) rows.Add(BestOf(s, run, seed, report));
        else if (method == ExtraSftArm) rows.AddRange(ExtraSft(s, run, seed, report));
        else
            for (int round = 1; round <= s.Rounds; round++)
            {
                watch.Restart();
                var r = run.RunRound();
                if (Environment.GetEnvironmentVariable("ONLINEALIGN_VERBOSE") == "1")
                    report.WriteLine(string.Join(", ", r.Metrics.Select(kv => $"{kv.Key}={kv.Value:G4}")));
                rows.Add((r.Metrics["eval/accuracy"], TestAccuracy(run, round)));
                report.WriteLine($"  {method,-8} round {round}: validation accuracy {rows[^1].Item1:P1}, test accuracy {rows[^1].Item2:P1}, " +
                                 $"pairs {r.Metrics["pairs/kept"]}, C {r.Metrics["consistency/C"]:F3}, " +
                                 $"tau(judge, verifier) {Get(r, "judge/tau_vs_verifier"):F3}, " +
                                 $"judge pairwise accuracy {Get(r, "judge/pairwise_accuracy"):F3}, " +
                                 $"rewards/accuracies {Get(r, "rewards/accuracies"):F2}, kl/initial {Get(r, "kl/initial"):F3}, " +
                                 // The round's own samples (of the policy it started from): 4,096 answers where greedy accuracy reads 200.
                                 $"sampled accuracy {Get(r, "generation/accuracy"):P2} " +
                                 $"({watch.Elapsed.TotalSeconds:F0} s)" +
                                 (r.Warnings.Count > 0 ? $" warnings: {string.Join(" | ", r.Warnings)}" : ""));
                report.WriteLine(GuardRoundLine(run.Spec.Guard, round, r.Metrics,
                    round > 1 ? run.Reports.FirstOrDefault(x => x.Round == round - 1)?.Metrics : null));
                report.WriteLine(frozen!.Line(run, round));
            }
        if (method is not (BestOfArm or ExtraSftArm)) report.WriteLine(GuardRunLine(run.Spec.Guard, run.Reports));
        return rows;
    }

    /// <summary>
    /// With --arm-logs, each arm's lines also go to TASK-ARM-SEED.log there, after the process's header: the name and content
    /// a one-arm process's log has in align_sweep.sh, so the summaries read a process that ran a seed's arms together alike.
    /// </summary>
    private static StreamWriter? ArmLog(Settings s, string method, int seed)
    {
        if (s.ArmLogs is null) return null;
        Directory.CreateDirectory(s.ArmLogs);
        var log = new StreamWriter(Path.Combine(s.ArmLogs, $"{s.Task}-{method}-{seed}.log")) { AutoFlush = true };
        log.Write(s.Header);
        return log;
    }

    private static void Discard(InProcessRun run, string folder, string method, int seed)
    {
        run.Dispose();
        Directory.Delete(Path.Combine(folder, $"{method}-{seed}"), recursive: true);
    }

    private static readonly string[] GuardSignals =
    [
        HealthSignals.JudgeDriftTau, HealthSignals.KlInitial, HealthSignals.KlInitialPerToken, HealthSignals.LengthDrift,
        HealthSignals.UnscoredRate, HealthSignals.ScoreEntropy, HealthSignals.ImplicitAgreement, HealthSignals.MajorityAgreement,
    ];

    /// <summary>
    /// What the guard would make of round <paramref name="round"/>'s signals with the spec's thresholds, recorded without
    /// stopping: the run goes on, so the rounds after a trip show whether stopping there was right (false and missed stops).
    /// The product's own rule (<see cref="GuardDecision.Crossings"/> and <see cref="GuardDecision.Rise"/> over the round
    /// before's signals, <paramref name="before"/>: null for round 1), never a copy of it.
    /// </summary>
    public static string GuardRoundLine(GuardSpec guard, int round, IReadOnlyDictionary<string, double> metrics,
        IReadOnlyDictionary<string, double>? before)
    {
        var crossed = GuardDecision.Crossings(guard, metrics);
        if (GuardDecision.Rise(guard, metrics, before) is { } rise) crossed.Add(rise);
        string signals = string.Join(", ", GuardSignals.Select(k => string.Create(CultureInfo.InvariantCulture,
            $"{k}={(metrics.TryGetValue(k, out var v) ? v : double.NaN):0.####}")));
        return $"  guard round {round}: {(crossed.Count > 0 ? "tripped (" + string.Join("; ", crossed) + ")" : "not tripped")}; {signals}";
    }

    /// <summary>The guard's verdict over the whole run (its thresholds, as if enabled): "guard: best round K (reason)".</summary>
    public static string GuardRunLine(GuardSpec guard, IReadOnlyList<RoundReport> reports)
    {
        var verdict = GuardDecision.Decide(guard with { Enabled = true },
            reports.Select(r => (r.Round, (IReadOnlyDictionary<string, double>)r.Metrics)).ToList());
        return string.Create(CultureInfo.InvariantCulture, $"guard: best round {verdict.BestRound} ({verdict.BestReason})");
    }

    /// <summary>Round r's policy's greedy accuracy on the test stream (reported only: nothing is chosen on it).</summary>
    private static double TestAccuracy(InProcessRun run, int round)
    {
        var spec = run.Spec;
        using var model = HfCheckpoint.Load(run.CheckpointFolder(round), DeviceSetting.Resolve(spec.Device));
        var tokenizer = TokenizerLoader.Load(run.CheckpointFolder(round), spec.Model.ChatTemplate);
        return ExperimentControls.GreedyAccuracy(model, tokenizer, RunSpecMapping.Task(spec)!, TestPrompts(spec), spec.Sampling.MaxNewTokens,
            Math.Max(1, spec.Sampling.BatchSize));
    }

    /// <summary>
    /// The round-0 model as an LLM judge, loaded once per run: "  frozen judge round r: ..." scores round r's policy's greedy
    /// answers to the validation prompts (no labels; frozen_judge_selection.py asks whether it follows accuracy and chooses
    /// rounds as well as labels).
    /// </summary>
    private sealed class FrozenJudge(InProcessRun run) : IDisposable
    {
        private readonly DecoderLM _model = HfCheckpoint.Load(run.CheckpointFolder(0), DeviceSetting.Resolve(run.Spec.Device));
        private readonly ITextTokenizer _tokenizer = TokenizerLoader.Load(run.CheckpointFolder(0), run.Spec.Model.ChatTemplate);

        public string Line(InProcessRun run, int round)
        {
            var spec = run.Spec;
            using var policy = HfCheckpoint.Load(run.CheckpointFolder(round), DeviceSetting.Resolve(spec.Device));
            var tokenizer = TokenizerLoader.Load(run.CheckpointFolder(round), spec.Model.ChatTemplate);
            var settings = RunSpecMapping.ToRoundSettings(spec with { Judge = spec.Judge with { Kind = "llm", Model = "policy" } });
            var judge = JudgeFactory.Create(settings, _model, null, _tokenizer, RunSpecMapping.Task(spec), null, spec.Seed, round, _model);
            double score = ExperimentControls.FrozenJudgeScore(policy, tokenizer, judge, RunSpecMapping.EvalPrompts(spec), spec.Sampling.MaxNewTokens,
                Math.Max(1, spec.Sampling.BatchSize));
            return string.Create(CultureInfo.InvariantCulture,
                $"  frozen judge round {round}: round-0 judge's mean score of the validation greedy answers {score:0.#####}");
        }

        public void Dispose() => _model.Dispose();
    }

    /// <summary>Best-of-N by the warm-started policy's own LLM judge (the llm arm's round-1 judge) on both streams, logged as round 1.</summary>
    private static (double, double) BestOf(Settings s, InProcessRun run, int seed, TextWriter report)
    {
        var watch = Stopwatch.StartNew();
        var spec = run.Spec with { SamplesPerPrompt = s.BestOf, Judge = run.Spec.Judge with { Kind = "llm" } };
        var settings = RunSpecMapping.ToRoundSettings(spec);
        var task = RunSpecMapping.Task(spec)!;
        using var policy = HfCheckpoint.Load(run.CheckpointFolder(0), DeviceSetting.Resolve(spec.Device));
        var tokenizer = TokenizerLoader.Load(run.CheckpointFolder(0), spec.Model.ChatTemplate);
        var judge = JudgeFactory.Create(settings, policy, null, tokenizer, task, null, spec.Seed, ExperimentControls.BestOfNRound, policy);
        var (validation, unscoredValidation) = ExperimentControls.BestOfN(policy, tokenizer, task, RunSpecMapping.EvalPrompts(spec), settings, judge,
            spec.Seed);
        var (test, unscoredTest) = ExperimentControls.BestOfN(policy, tokenizer, task, TestPrompts(spec), settings, judge, spec.Seed);
        report.WriteLine($"  {BestOfArm,-8} round 1: validation accuracy {validation:P1}, test accuracy {test:P1}, pairs 0, C NaN, " +
                         $"tau(judge, verifier) NaN, best of {s.BestOf} by the round-0 LLM judge, unscored prompts {unscoredValidation:P1} / " +
                         $"{unscoredTest:P1} ({watch.Elapsed.TotalSeconds:F0} s)");
        return (validation, test);
    }

    /// <summary>Extra SFT: each round, as many steps as a DPO round with a pair for every prompt takes, on fresh noisy demonstrations.</summary>
    private static List<(double, double)> ExtraSft(Settings s, InProcessRun run, int seed, TextWriter report)
    {
        var spec = run.Spec;
        var task = RunSpecMapping.Task(spec)!;
        var device = DeviceSetting.Resolve(spec.Device);
        using var model = HfCheckpoint.Load(run.CheckpointFolder(0), device);
        var tokenizer = TokenizerLoader.Load(run.CheckpointFolder(0), spec.Model.ChatTemplate);
        int steps = ExperimentControls.RoundSteps(spec.PromptsPerRound, spec.Optimizer.BatchSize, spec.Optimizer.Epochs);
        var rows = new List<(double, double)>();
        for (int round = 1; round <= s.Rounds; round++)
        {
            var watch = Stopwatch.StartNew();
            var losses = ExperimentControls.ExtraSft(model, tokenizer, task, steps, spec.Optimizer.BatchSize, spec.Optimizer.LearningRate, spec.SftNoise,
                seed, round);
            int batch = Math.Max(1, spec.Sampling.BatchSize);
            rows.Add((ExperimentControls.GreedyAccuracy(model, tokenizer, task, RunSpecMapping.EvalPrompts(spec), spec.Sampling.MaxNewTokens, batch),
                ExperimentControls.GreedyAccuracy(model, tokenizer, task, TestPrompts(spec), spec.Sampling.MaxNewTokens, batch)));
            report.WriteLine($"  {ExtraSftArm,-8} round {round}: validation accuracy {rows[^1].Item1:P1}, test accuracy {rows[^1].Item2:P1}, pairs 0, " +
                             $"C NaN, tau(judge, verifier) NaN, {steps} SFT steps, last loss {losses[^1]:F3} ({watch.Elapsed.TotalSeconds:F0} s)");
        }
        return rows;
    }

    /// <summary>"mean ± half-width" of a 95% Student-t interval over seeds.</summary>
    private static string Interval(IEnumerable<double> values, bool points = false)
    {
        var v = values.ToArray();
        if (v.Length == 0) return "-";
        double mean = v.Average();
        double sd = v.Length > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1)) : double.NaN;
        double[] t975 = [double.NaN, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];
        double half = (v.Length - 1 < t975.Length ? t975[v.Length - 1] : 1.96) * sd / Math.Sqrt(v.Length);
        return points ? $"{100 * mean:+0.0;-0.0} ± {100 * half:0.0}" : $"{mean:P1} ± {100 * half:0.0}";
    }

    private static double Get(RoundReport r, string key) => r.Metrics.TryGetValue(key, out var v) ? v : double.NaN;
}
