using System.Globalization;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Execution.InProcess;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// Online rounds in one process on one device (no cluster; the cluster's own phase functions, through InProcessRun): generate N samples per prompt,
/// judge (implicit reward), pairs with reference log-probs, DPO training, evaluation; with a random-weight
/// model of a benchmark shape. `pytorch_round.py` does the same round in PyTorch + transformers for comparison.
/// Prompts are random lowercase text (one byte token per character), so both sides see the same shapes.
/// </summary>
public static class RoundBenchmark
{
    private static readonly string[] Phases = ["generate", "judge", "pairs", "train", "evaluate"];

    public sealed record Settings(string Model, string Device, ScalarType DType, int Rounds, int Prompts, int PromptTokens,
        int Samples, int NewTokens, int BatchSize, double PeakTflops, int GenerationBatchSize, string Judge, string JudgeTemplate, int Judgements);

    /// <summary>The command's options (see Program.cs), from a lookup of "--name value" arguments with defaults.</summary>
    public static Settings Parse(Func<string, string, string> arg) => new(
        Model: arg("model", "tiny"),
        Device: arg("device", "cpu"),
        DType: ModelShapes.DType(arg("dtype", "f32")),
        Rounds: int.Parse(arg("rounds", "2"), CultureInfo.InvariantCulture),
        Prompts: int.Parse(arg("prompts", "64"), CultureInfo.InvariantCulture),
        PromptTokens: int.Parse(arg("prompt", "64"), CultureInfo.InvariantCulture),
        Samples: int.Parse(arg("samples", "4"), CultureInfo.InvariantCulture),
        NewTokens: int.Parse(arg("new", "64"), CultureInfo.InvariantCulture),
        BatchSize: int.Parse(arg("batch", "8"), CultureInfo.InvariantCulture),
        PeakTflops: double.Parse(arg("peak-tflops", "0"), CultureInfo.InvariantCulture),
        GenerationBatchSize: int.Parse(arg("gen-batch", "64"), CultureInfo.InvariantCulture),
        Judge: arg("judge", "implicit"),
        JudgeTemplate: arg("judge-template", "rubric"),
        Judgements: int.Parse(arg("judgements", "3"), CultureInfo.InvariantCulture));

    public static void Run(Settings s, TextWriter report)
    {
        var device = DeviceSetting.Resolve(s.Device);
        var config = s.Model == "tiny" ? BuiltinModels.Tiny : ModelShapes.ByName(s.Model);
        // Initialised as transformers initialises them, like pytorch_round.py's models, and saved as the
        // Hugging Face folder the run starts from (the run's rounds go through the product's own phases).
        string folder = Path.Combine(Path.GetTempPath(), "onlinealign-round-benchmark-" + Guid.NewGuid().ToString("N")[..8]);
        using (var generator = new Generator(0))
        using (var initial = new DecoderLM(config).InitializeLikeTransformers(generator).Place(device, s.DType))
            HfCheckpoint.Save(initial, Path.Combine(folder, "model"), new ByteTokenizer().HfFiles());
        long parameters = config.ParameterCount();
        report.WriteLine($"round benchmark: model {s.Model} ({parameters / 1e6:F1}M parameters, {s.DType}) on {device}; " +
                         $"{s.Prompts} prompts x {s.Samples} samples, {s.PromptTokens}-token prompts, {s.NewTokens} new tokens, batch {s.BatchSize}, " +
                         $"generation batch {s.GenerationBatchSize}, judge " +
                             $"{(s.Judge == "llm" ? $"llm ({s.JudgeTemplate}, {s.Judgements} judgements)" : s.Judge)}" +
                         " (a JSONL prompt set: no held-out evaluation, so the evaluate phase does nothing)");
        var random = new Random(0);
        string prompts = Path.Combine(folder, "prompts.jsonl");
        File.WriteAllLines(prompts, Enumerable.Range(0, s.Rounds * s.Prompts).Select(_ => System.Text.Json.JsonSerializer.Serialize(new
        {
            prompt = new string(Enumerable.Range(0, s.PromptTokens - 1).Select(_ => (char)('a' + random.Next(26))).ToArray()),
        })));
        var spec = new RunSpec
        {
            Name = "round-benchmark", Model = new() { HfFolder = Path.Combine(folder, "model") }, Prompts = new() { JsonlPath = prompts },
            Rounds = s.Rounds, PromptsPerRound = s.Prompts,
            SamplesPerPrompt = s.Samples, Consistency = "dyn", Seed = 1, Device = s.Device,
            Sampling = new() { Temperature = 1.0, TopP = 1.0, MaxNewTokens = s.NewTokens, BatchSize = s.GenerationBatchSize },
            Judge = new() { Kind = s.Judge, Template = s.JudgeTemplate, Judgements = s.Judgements },
            Loss = new() { Kind = "dpo", Beta = 0.1 },
            Optimizer = new() { LearningRate = 1e-6, WeightDecay = 0, BatchSize = s.BatchSize },
        };
        using var run = new InProcessRun(spec, Path.Combine(folder, "run"), device);
        for (int round = 1; round <= s.Rounds; round++)
        {
            var r = run.RunRound();
            var m = r.Metrics;
            double generated = s.Prompts * s.Samples * m["generation/length_mean"];
            // Training FLOPs: 6 x parameters x tokens (forward + backward) over chosen and rejected rows.
            double trainTokens = m.GetValueOrDefault("pairs/kept") * (2 * s.PromptTokens + m.GetValueOrDefault("lengths/chosen")
                + m.GetValueOrDefault("lengths/rejected"));
            double trainSeconds = Math.Max(1e-9, m["time/train"]);
            string mfu = s.PeakTflops > 0 ? $", MFU at 6N per token {100 * 6 * parameters * trainTokens / trainSeconds / (s.PeakTflops * 1e12):F1}%" : "";
            report.WriteLine($"round {round}: " + string.Join(", ", Phases.Select(p => $"{p} {m[$"time/{p}"]:F2} s")) +
                             $" | generation {generated / m["time/generate"]:F0} new tokens/s | training {trainTokens / trainSeconds:F0} tokens/s{mfu}");
        }
        run.Dispose();
        Directory.Delete(folder, recursive: true);
    }
}
