using OnlineAlign.Alignment.Losses;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// One online round's phases in one process on one device (no cluster): generate N samples per prompt,
/// judge (implicit reward), pairs with reference log-probs, DPO training, evaluation; with a random-weight
/// model of a benchmark shape. `pytorch_round.py` does the same round in PyTorch + transformers for comparison.
/// Prompts are random lowercase text (one byte token per character), so both sides see the same shapes.
/// </summary>
public static class RoundBenchmark
{
    public sealed record Settings(string Model, string Device, ScalarType DType, int Rounds, int Prompts, int PromptTokens,
        int Samples, int NewTokens, int BatchSize, int EvalPrompts, double PeakTflops);

    public static void Run(Settings s, TextWriter report)
    {
        var device = DeviceSetting.Resolve(s.Device);
        var config = s.Model == "tiny" ? BuiltinModels.Tiny : ModelShapes.ByName(s.Model);
        // Initialised as transformers initialises them, like pytorch_round.py's models.
        using var generator = new Generator(0);
        var policy = new DecoderLM(config).InitializeLikeTransformers(generator).Place(device, s.DType);
        using var models = new RunModels { Policy = policy, Initial = BuiltinModels.Clone(policy) };
        long parameters = models.Policy.parameters().Sum(p => p.NumberOfElements);
        report.WriteLine($"round benchmark: model {s.Model} ({parameters / 1e6:F1}M parameters, {s.DType}) on {device}; " +
                         $"{s.Prompts} prompts x {s.Samples} samples, {s.PromptTokens}-token prompts, {s.NewTokens} new tokens, batch {s.BatchSize}");
        var random = new Random(0);
        List<PromptItem> Texts(int n) => Enumerable.Range(0, n)
            .Select(_ => new PromptItem(new string(Enumerable.Range(0, s.PromptTokens - 1).Select(_ => (char)('a' + random.Next(26))).ToArray()))).ToList();
        var evalPrompts = Texts(s.EvalPrompts);
        var settings = new RoundSettings
        {
            SamplesPerPrompt = s.Samples,
            Sampling = new SamplingOptions { Temperature = 1.0, TopP = 1.0, MaxNewTokens = s.NewTokens },
            Judge = "implicit", Consistency = "dyn", Loss = new LossSettings { Kind = "dpo", Beta = 0.1 },
            Optimizer = new OptimizerSettings { LearningRate = 1e-6, WeightDecay = 0 }, BatchSize = s.BatchSize, EvalMaxNewTokens = s.NewTokens,
        };
        var earlier = new List<RoundReport>();
        for (int round = 1; round <= s.Rounds; round++)
        {
            var prompts = Texts(s.Prompts);
            var r = OnlineRound.Run(models, new OnlineRound.Inputs(settings, new ByteTokenizer(), null, prompts,
                Enumerable.Range(0, prompts.Count).ToList(), evalPrompts, "previous_round", 1, round, earlier));
            earlier.Add(r);
            var m = r.Metrics;
            double generated = s.Prompts * s.Samples * m["generation/length_mean"];
            // Training FLOPs: 6 x parameters x tokens (forward + backward) over chosen and rejected rows.
            double trainTokens = m.GetValueOrDefault("pairs/kept") * (2 * s.PromptTokens + m.GetValueOrDefault("lengths/chosen") + m.GetValueOrDefault("lengths/rejected"));
            double trainSeconds = Math.Max(1e-9, m["time/train"]);
            string mfu = s.PeakTflops > 0 ? $", MFU at 6N per token {100 * 6 * parameters * trainTokens / trainSeconds / (s.PeakTflops * 1e12):F1}%" : "";
            report.WriteLine($"round {round}: " + string.Join(", ", new[] { "generate", "judge", "pairs", "train", "evaluate" }.Select(p => $"{p} {m[$"time/{p}"]:F2} s")) +
                             $" | generation {generated / m["time/generate"]:F0} new tokens/s | training {trainTokens / trainSeconds:F0} tokens/s{mfu}");
        }
    }
}
