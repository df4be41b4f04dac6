using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Specs;
using Orleans.Serialization;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// Data-parallel training's exchange per optimiser step, measured on one machine: for each shape, one micro-batch's
/// backward (what a replica computes), then what the exchange does with its gradient: the copy to the host, the chunks
/// through Orleans' serializer and back (what a grain call does at each end, without the wire), the add into the
/// coordinator's sum, and the sum's copy out and into a replica. The wire itself is not measured here: docs/benchmarks.md
/// gives its arithmetic per link from the bytes printed.
/// </summary>
public static class DataParallelBenchmark
{
    public sealed record Settings(string[] Cases, int Pairs, int PromptTokens, int ResponseTokens, int Accumulation, int Replicas, int Repeats);

    private static readonly LoraSpec Adapter = new() { Rank = 16, Alpha = 32, TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj"] };

    public static void Run(Settings s, TextWriter report)
    {
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();
        report.WriteLine($"micro-batch: {s.Pairs} pairs of {s.PromptTokens}+{s.ResponseTokens} tokens; a step: {s.Accumulation} micro-batches over {s.Replicas} replicas");
        report.WriteLine("| case | gradient values | MB a gradient | backward a micro-batch (s) | to host (s) | serialize+deserialize (s) | add to sum (s) | sum out+in (s) | exchange a step: MB | exchange a step, no wire (s) |");
        report.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var name in s.Cases)
        {
            // "qwen2-0.5b:lora16" or "llama-20m:full"
            var parts = name.Split(':');
            bool lora = parts.Length > 1 && parts[1].StartsWith("lora", StringComparison.Ordinal);
            using var model = ModelShapes.Random(ModelShapes.ByName(parts[0]), CPU, ScalarType.Float32);
            if (lora)
            {
                using var generator = new Generator(1);
                model.AddAdapters(Adapter with { Rank = int.Parse(parts[1][4..], CultureInfo.InvariantCulture) }, generator);
            }
            var random = new Random(3);
            int Token() => random.Next(3, Math.Min(30000, model.Config.VocabSize));
            var pairs = Enumerable.Range(0, s.Pairs * s.Accumulation).Select(_ => new PairExample(
                Enumerable.Range(0, s.PromptTokens).Select(_ => Token()).ToArray(), Enumerable.Range(0, s.ResponseTokens).Select(_ => Token()).ToArray(),
                Enumerable.Range(0, s.ResponseTokens).Select(_ => Token()).ToArray(), -50, -50)).ToList();
            var settings = new PreferenceTrainer.Settings(new LossSpec { Kind = "dpo" },
                new OptimizerSettings { LearningRate = 1e-5, GradientAccumulation = s.Accumulation }, 1, s.Pairs, 1);
            using var steps = new PreferenceSteps(model, pairs, settings);
            double backward = 0, toHost = 0, serialization = 0, add = 0, sumOutIn = 0;
            float[] gradient = [];
            for (int repeat = 0; repeat < s.Repeats; repeat++)
            {
                var clock = Stopwatch.StartNew();
                steps.Backward(0, 0);
                backward += clock.Elapsed.TotalSeconds;
                clock.Restart();
                gradient = steps.Gradient();
                toHost += clock.Elapsed.TotalSeconds;
                clock.Restart();
                var back = new float[gradient.Length];
                foreach (var (offset, n) in DataParallelPlan.Chunks(gradient.LongLength))
                {
                    var bytes = serializer.SerializeToArray(DataParallelPlan.Bytes(gradient.AsSpan((int)offset, n)));
                    DataParallelPlan.CopyValues(serializer.Deserialize<byte[]>(bytes)!, back, offset);
                }
                serialization += clock.Elapsed.TotalSeconds;
                clock.Restart();
                steps.Add(back);
                add += clock.Elapsed.TotalSeconds;
                clock.Restart();
                steps.SetSum(steps.Sum());
                sumOutIn += clock.Elapsed.TotalSeconds;
            }
            int n0 = s.Repeats;
            double mb = gradient.LongLength * 4.0 / 1e6;
            // Replica 0 gathers every other replica's micro-batch gradients, then sends the sum to each of them.
            int gathered = s.Accumulation - DataParallelPlan.Share(s.Accumulation, s.Replicas, 0).Count, sent = s.Replicas - 1;
            // Serialized at the sender, deserialized at the receiver: the column times both ends once.
            double perGradient = (toHost + serialization + add) / n0;
            double stepSeconds = gathered * perGradient + sent * (serialization + sumOutIn) / n0;
            report.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {gradient.LongLength:N0} | {mb:F1} | {backward / n0:F3} | {toHost / n0:F4} | {serialization / n0:F4} | {add / n0:F4} | {sumOutIn / n0:F4} | {(gathered + sent) * mb:F1} | {stepSeconds:F3} |"));
        }
    }
}
