using System.Diagnostics;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.InProcess;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// Does online alignment help? Warm-start a tiny model by SFT on noisy demonstrations of a built-in
/// task, then run online rounds with (a) the verifier as judge, (b) self-reward (implicit) without
/// consistency regularisation, (c) CREAM: self-reward with consistency regularisation; several seeds.
/// </summary>
public static class AlignmentExperiment
{
    public sealed record Settings(string Task, int Rounds, int[] Seeds, int PromptsPerRound, int EvalPrompts, int SftSteps,
        double Noise, double LearningRate, double Beta, int Samples, string[] Methods, double RpoAlpha = 0, int Epochs = 1, int EftExamples = 0,
            string Reference = "previous_round", double SelmAlpha = 0.01);

    /// <summary>Each arm's judge, loss and consistency regularisation.</summary>
    public static readonly IReadOnlyDictionary<string, (string Judge, string Loss, string Consistency)> Arms =
        new Dictionary<string, (string, string, string)>
        {
            ["verifier"] = ("verifier", "dpo", "none"),                 // labels: the upper bound
            ["self"] = ("implicit", "dpo", "none"),                     // implicit reward, no regularisation
            ["cream"] = ("implicit", "cream", "dyn"),                   // CREAM
            ["llm"] = ("llm", "dpo", "none"),                           // Self-Rewarding: LLM-as-a-judge after IFT+EFT
            ["cream-llm"] = ("llm", "cream", "dyn"),                    // CREAM with the LLM judge
            ["frozen-llm"] = ("llm", "dpo", "none"),                    // the warm-started model judges every round (judge.model initial)
            ["self-consistent"] = ("self_consistent", "dpo", "none"), // LLM judge pairs where the implicit reward agrees
            ["sppo"] = ("llm", "sppo", "none"),                        // SPPO's soft win-rate target, LLM judge scores
            ["selm"] = ("llm", "dpo", "none"),                         // SELM: DPO + optimism term (--selm-alpha)
            ["majority"] = ("majority", "dpo", "none"),
            ["likelihood"] = ("likelihood", "dpo", "none"),
            ["cream-likelihood"] = ("likelihood", "cream", "dyn"),
        };

    /// <summary>The run spec of one arm: the product's own spec, run through the product's own phases (InProcessRun).</summary>
    public static RunSpec Spec(Settings s, string method, int seed) => new()
    {
        Name = method, Prompts = new() { Task = s.Task, EvalPrompts = s.EvalPrompts }, Seed = (ulong)seed,
        SftSteps = s.SftSteps, SftNoise = s.Noise, Rounds = s.Rounds,
        PromptsPerRound = s.PromptsPerRound, SamplesPerPrompt = s.Samples, Device = "cpu",
        Consistency = Arms[method].Consistency, EftExamples = s.EftExamples, Reference = s.Reference,
        Judge = new() { Kind = Arms[method].Judge, Model = method.StartsWith("frozen", StringComparison.Ordinal) ? "initial" : "policy" },
        Loss = new() { Kind = Arms[method].Loss, Beta = s.Beta, RpoAlpha = s.RpoAlpha, SelmAlpha = method == "selm" ? s.SelmAlpha : 0 },
        Optimizer = new() { Epochs = s.Epochs, LearningRate = s.LearningRate, WeightDecay = 0, BatchSize = 16 },
    };

    public static void Run(Settings s, TextWriter report)
    {
        var table = new Dictionary<(string Method, int Seed), List<RoundReport>>();
        var initialAccuracy = new Dictionary<int, double>();
        string folder = Path.Combine(Path.GetTempPath(), "onlinealign-experiment-" + Guid.NewGuid().ToString("N")[..8]);
        foreach (int seed in s.Seeds)
            foreach (var method in s.Methods)
            {
                var watch = Stopwatch.StartNew();
                using var run = new InProcessRun(Spec(s, method, seed), Path.Combine(folder, $"{method}-{seed}"));
                var initial = run.Prepare();
                initialAccuracy[seed] = initial.Metrics["eval/accuracy"];
                report.WriteLine($"seed {seed} {method}: round 0 (SFT {s.SftSteps} steps on {s.Noise:P0}-noisy demonstrations): " +
                                 $"held-out accuracy {initial.Metrics["eval/accuracy"]:P1} ({watch.Elapsed.TotalSeconds:F0} s)");
                for (int round = 1; round <= s.Rounds; round++)
                {
                    watch.Restart();
                    var r = run.RunRound();
                    if (Environment.GetEnvironmentVariable("ONLINEALIGN_VERBOSE") == "1")
                        report.WriteLine(string.Join(", ", r.Metrics.Select(kv => $"{kv.Key}={kv.Value:G4}")));
                    report.WriteLine($"  {method,-8} round {round}: accuracy {r.Metrics["eval/accuracy"]:P1}, pairs {r.Metrics["pairs/kept"]}, " +
                                     $"C {r.Metrics["consistency/C"]:F3}, tau(judge, verifier) {Get(r, "judge/tau_vs_verifier"):F3}, " +
                                     $"rewards/accuracies {Get(r, "rewards/accuracies"):F2}, kl/initial {Get(r, "kl/initial"):F3} " +
                                         $"({watch.Elapsed.TotalSeconds:F0} s)" +
                                     (r.Warnings.Count > 0 ? $" warnings: {string.Join(" | ", r.Warnings)}" : ""));
                }
                table[(method, seed)] = run.Reports.Skip(1).ToList();
                Directory.Delete(Path.Combine(folder, $"{method}-{seed}"), recursive: true);
            }

        report.WriteLine();
        report.WriteLine($"Held-out accuracy (mean over seeds {string.Join(", ", s.Seeds)} with its 95% t-interval; greedy, {s.EvalPrompts} prompts):");
        report.WriteLine();
        report.WriteLine("| method | round 0 | " + string.Join(" | ", Enumerable.Range(1, s.Rounds).Select(r => $"round {r}")) + " |");
        report.WriteLine("|---|---|" + string.Concat(Enumerable.Repeat("---|", s.Rounds)));
        foreach (var method in s.Methods)
            report.WriteLine($"| {method} | {Interval(s.Seeds.Select(seed => initialAccuracy[seed]))} | " +
                string.Join(" | ", Enumerable.Range(0, s.Rounds)
                    .Select(r => Interval(s.Seeds.Select(seed => table[(method, seed)][r].Metrics["eval/accuracy"])))) + " |");
        report.WriteLine();
        report.WriteLine("Change over round 0, paired by seed (mean and 95% t-interval, percentage points):");
        report.WriteLine();
        report.WriteLine("| method | " + string.Join(" | ", Enumerable.Range(1, s.Rounds).Select(r => $"round {r}")) + " |");
        report.WriteLine("|---|" + string.Concat(Enumerable.Repeat("---|", s.Rounds)));
        foreach (var method in s.Methods)
            report.WriteLine($"| {method} | " + string.Join(" | ", Enumerable.Range(0, s.Rounds).Select(r =>
                Interval(s.Seeds.Select(seed => table[(method, seed)][r].Metrics["eval/accuracy"] - initialAccuracy[seed]), points: true))) + " |");
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

    /// <summary>"mean ± half-width" of a 95% Student-t interval over seeds.</summary>
    private static string Interval(IEnumerable<double> values, bool points = false)
    {
        var v = values.ToArray();
        double mean = v.Average();
        double sd = v.Length > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1)) : double.NaN;
        double[] t975 = [double.NaN, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];
        double half = (v.Length - 1 < t975.Length ? t975[v.Length - 1] : 1.96) * sd / Math.Sqrt(v.Length);
        return points ? $"{100 * mean:+0.0;-0.0} ± {100 * half:0.0}" : $"{mean:P1} ± {100 * half:0.0}";
    }

    private static double Get(RoundReport r, string key) => r.Metrics.TryGetValue(key, out var v) ? v : double.NaN;
}
