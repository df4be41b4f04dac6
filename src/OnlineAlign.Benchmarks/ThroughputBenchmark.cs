using System.Globalization;
using System.Diagnostics;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// Offline generation throughput on nano-vllm's public benchmark shape (its bench.py): 256 sequences of random
/// token ids below 10,000, prompt lengths drawn from 100-1024, each with its own output length drawn from 100-1024,
/// temperature 0.6, end-of-sequence ignored, all submitted at once; throughput is output tokens over seconds.
/// The goal set beside it: half of vLLM's published ~17,700 output tokens/s for Qwen2-0.5B on one A800.
/// `pytorch_engine.py --workload nanovllm` runs the same shape in transformers (and vLLM where installed).
/// </summary>
public static class ThroughputBenchmark
{
    public sealed record Settings(string Model, string Device, ScalarType DType, int Sequences, int MinInput, int MaxInput,
        int MinOutput, int MaxOutput, int Batch, int Repeats);

    public static Settings Parse(Func<string, string, string> arg) => new(
        Model: arg("model", "qwen2-0.5b"),
        Device: arg("device", "cpu"),
        DType: ModelShapes.DType(arg("dtype", "f32")),
        Sequences: int.Parse(arg("sequences", "256"), CultureInfo.InvariantCulture),
        MinInput: int.Parse(arg("min-input", "100"), CultureInfo.InvariantCulture),
        MaxInput: int.Parse(arg("max-input", "1024"), CultureInfo.InvariantCulture),
        MinOutput: int.Parse(arg("min-output", "100"), CultureInfo.InvariantCulture),
        MaxOutput: int.Parse(arg("max-output", "1024"), CultureInfo.InvariantCulture),
        Batch: int.Parse(arg("batch", "0"), CultureInfo.InvariantCulture),
        Repeats: int.Parse(arg("repeats", "1"), CultureInfo.InvariantCulture));

    public static void Run(Settings s, TextWriter report)
    {
        var device = DeviceSetting.Resolve(s.Device);
        var config = ModelShapes.ByName(s.Model);
        using var model = ModelShapes.Random(config, device, s.DType);
        // bench.py's draws: seed 0, ids in [0, 10000], lengths in [min, max] inclusive.
        var random = new Random(0);
        int vocabulary = Math.Min(10_001, config.VocabSize);
        var prompts = Enumerable.Range(0, s.Sequences)
            .Select(_ => Enumerable.Range(0, random.Next(s.MinInput, s.MaxInput + 1)).Select(_ => random.Next(0, vocabulary)).ToArray()).ToList();
        var limits = Enumerable.Range(0, s.Sequences).Select(_ => random.Next(s.MinOutput, s.MaxOutput + 1)).ToList();
        var options = new SamplingOptions { MaxNewTokens = limits.Max(), Temperature = 0.6 };
        int batch = s.Batch > 0 ? s.Batch : s.Sequences;
        report.WriteLine($"throughput, nano-vllm's shape: {s.Model} ({config.ParameterCount() / 1e6:F1}M parameters, {s.DType}) on {device}; " +
            $"{s.Sequences} sequences, " +
                         $"prompts {s.MinInput}-{s.MaxInput} tokens ({prompts.Sum(p => (long)p.Length)} in all), outputs " +
                             $"{s.MinOutput}-{s.MaxOutput} ({limits.Sum()} in all), batch {batch}");
        TextGenerator.Generate(model, [.. prompts.Take(2).Select(p => p[..Math.Min(16, p.Length)])], options with { MaxNewTokens = 4 });   // warm-up
        for (int r = 0; r < s.Repeats; r++)
        {
            var stats = new GenerationStats();
            var clock = Stopwatch.StartNew();
            var outputs = TextGenerator.Generate(model, prompts, options, maxBatch: batch, stats: stats, rowMaxNewTokens: limits);
            if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize(device);
            double seconds = clock.Elapsed.TotalSeconds;
            long tokens = outputs.Sum(o => (long)o.Tokens.Length);
            report.WriteLine($"generate: {seconds:F2} s, {tokens} output tokens, {tokens / seconds:F0} output tokens/s " +
                             $"(decode row-steps {stats.DecodeRowSteps}, compactions {stats.Compactions})");
        }
    }
}
