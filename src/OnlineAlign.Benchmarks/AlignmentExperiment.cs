using System.Diagnostics;
using OnlineAlign.Alignment.Losses;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// Does online alignment help? Warm-start a tiny model by SFT on noisy demonstrations of a built-in
/// task, then run online rounds with (a) the verifier as judge, (b) self-reward (implicit) without
/// consistency regularisation, (c) CREAM: self-reward with consistency regularisation; several seeds.
/// </summary>
public static class AlignmentExperiment
{
    public sealed record Settings(string Task, int Rounds, int[] Seeds, int PromptsPerRound, int EvalPrompts, int SftSteps,
        double Noise, double LearningRate, double Beta, int Samples, string[] Methods, double RpoAlpha = 0, int Epochs = 1);

    public static void Run(Settings s, TextWriter report)
    {
        var tokenizer = new ByteTokenizer();
        var task = BuiltinTasks.ByName(s.Task);
        var table = new Dictionary<(string Method, int Seed), List<RoundReport>>();
        var initialAccuracy = new Dictionary<int, double>();
        foreach (int seed in s.Seeds)
        {
            var watch = Stopwatch.StartNew();
            using var warm = WarmStart.Train(BuiltinModels.Tiny, tokenizer, task, new WarmStart.Settings(Steps: s.SftSteps, Noise: s.Noise), seed, out var sftLosses);
            var evalPrompts = task.Prompts(s.EvalPrompts, seed, "eval");
            var initial = RoundPhases.Evaluate(warm, warm, warm, tokenizer, task, evalPrompts, 16, (ulong)seed,
                new RoundSettings().GenerationBatchSize);
            initialAccuracy[seed] = initial["eval/accuracy"];
            report.WriteLine($"seed {seed}: SFT {s.SftSteps} steps on {s.Noise:P0}-noisy demonstrations, final loss {sftLosses[^1]:F3}, " +
                             $"held-out accuracy {initial["eval/accuracy"]:P1} ({watch.Elapsed.TotalSeconds:F0} s)");
            foreach (var method in s.Methods)
            {
                var settings = new RoundSettings
                {
                    SamplesPerPrompt = s.Samples,
                    Judge = method == "verifier" ? "verifier" : "implicit",
                    Consistency = method == "cream" ? "dyn" : "none",
                    Loss = new LossSettings { Kind = method == "cream" ? "cream" : "dpo", Beta = s.Beta, RpoAlpha = s.RpoAlpha },
                    Epochs = s.Epochs,
                    Optimizer = new OptimizerSettings { LearningRate = s.LearningRate, WeightDecay = 0 },
                    BatchSize = 16,
                };
                using var models = new RunModels { Policy = BuiltinModels.Clone(warm), Initial = BuiltinModels.Clone(warm) };
                var reports = new List<RoundReport>();
                for (int round = 1; round <= s.Rounds; round++)
                {
                    watch.Restart();
                    var indices = Enumerable.Range((round - 1) * s.PromptsPerRound, s.PromptsPerRound).ToList();
                    var all = task.Prompts(s.Rounds * s.PromptsPerRound, seed + 1000, "train");
                    var prompts = indices.Select(i => all[i]).ToList();
                    var r = OnlineRound.Run(models, new OnlineRound.Inputs(settings, tokenizer, task, prompts, indices, evalPrompts,
                        "previous_round", (ulong)seed, round, reports));
                    reports.Add(r);
                    if (Environment.GetEnvironmentVariable("ONLINEALIGN_VERBOSE") == "1") report.WriteLine(string.Join(", ", r.Metrics.Select(kv => $"{kv.Key}={kv.Value:G4}")));
                    report.WriteLine($"  {method,-8} round {round}: accuracy {r.Metrics["eval/accuracy"]:P1}, pairs {r.Metrics["pairs/kept"]}, " +
                                     $"C {r.Metrics["consistency/C"]:F3}, tau(judge, verifier) {Get(r, "judge/tau_vs_verifier"):F3}, " +
                                     $"rewards/accuracies {Get(r, "rewards/accuracies"):F2}, kl/initial {Get(r, "kl/initial"):F3} ({watch.Elapsed.TotalSeconds:F0} s)" +
                                     (r.Warnings.Count > 0 ? $" warnings: {string.Join(" | ", r.Warnings)}" : ""));
                }
                table[(method, seed)] = reports;
            }
        }

        report.WriteLine();
        report.WriteLine($"Held-out accuracy (mean over seeds {string.Join(", ", s.Seeds)}; greedy, {s.EvalPrompts} prompts):");
        report.WriteLine();
        report.WriteLine("| method | SFT | " + string.Join(" | ", Enumerable.Range(1, s.Rounds).Select(r => $"round {r}")) + " |");
        report.WriteLine("|---|---|" + string.Concat(Enumerable.Repeat("---|", s.Rounds)));
        foreach (var method in s.Methods)
            report.WriteLine($"| {method} | {s.Seeds.Average(seed => initialAccuracy[seed]):P1} | " +
                string.Join(" | ", Enumerable.Range(0, s.Rounds).Select(r => $"{s.Seeds.Average(seed => table[(method, seed)][r].Metrics["eval/accuracy"]):P1}")) + " |");
        foreach (var (metric, label) in new[] { ("consistency/C", "CREAM consistency C"), ("judge/tau_vs_verifier", "Kendall tau(self-judge, verifier)") })
        {
            report.WriteLine();
            report.WriteLine($"{label} per round (mean over seeds):");
            report.WriteLine();
            report.WriteLine("| method | " + string.Join(" | ", Enumerable.Range(1, s.Rounds).Select(r => $"round {r}")) + " |");
            report.WriteLine("|---|" + string.Concat(Enumerable.Repeat("---|", s.Rounds)));
            foreach (var method in s.Methods.Where(m => m != "verifier"))
                report.WriteLine($"| {method} | " + string.Join(" | ", Enumerable.Range(0, s.Rounds).Select(r =>
                    $"{s.Seeds.Select(seed => Get(table[(method, seed)][r], metric)).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Average():F3}")) + " |");
        }
    }

    private static double Get(RoundReport r, string key) => r.Metrics.TryGetValue(key, out var v) ? v : double.NaN;
}
