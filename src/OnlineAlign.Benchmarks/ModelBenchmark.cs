using System.Diagnostics;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace OnlineAlign.Benchmarks;

/// <summary>Generation tokens/s, log-prob tokens/s and DPO training-step tokens/s (and MFU) for one model shape.</summary>
public static class ModelBenchmark
{
    public sealed record Settings(string Model, string Device, ScalarType DType, int[] GenerationBatches, int PromptTokens,
        int NewTokens, int TrainPairs, int TrainTokens, int Repeats, double PeakTflops);

    public static void Run(Settings s, TextWriter report)
    {
        var device = DeviceSetting.Resolve(s.Device);
        using var generator = new Generator(0);
        using var model = Directory.Exists(s.Model)
            ? HfCheckpoint.Load(s.Model, device, s.DType)
            : new DecoderLM(ModelShapes.ByName(s.Model)).InitializeLikeTransformers(generator).Place(device, s.DType);
        var c = model.Config;
        long parameters = model.parameters().Sum(p => p.NumberOfElements);
        report.WriteLine($"model {s.Model}: {parameters / 1e6:F1}M parameters, {s.DType}, device {device}");
        var random = new Random(0);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => random.Next(3, c.VocabSize)).ToArray();

        foreach (int batch in s.GenerationBatches)
        {
            var prompts = Enumerable.Range(0, batch).Select(_ => Tokens(s.PromptTokens)).ToList();
            foreach (var (label, options) in new[]
            {
                ("greedy", new SamplingOptions { MaxNewTokens = s.NewTokens, Temperature = 0 }),
                ("sampling T0.8 top-p0.95", new SamplingOptions { MaxNewTokens = s.NewTokens, Temperature = 0.8, TopP = 0.95, Seed = 1 }),
            })
            {
                TextGenerator.Generate(model, prompts, options with { MaxNewTokens = 4 });
                double seconds = Time(device, s.Repeats, () => TextGenerator.Generate(model, prompts, options));
                report.WriteLine($"generate batch {batch,3} {label,-24} {s.PromptTokens}-token prompts, {s.NewTokens} new: " +
                                 $"{batch * s.NewTokens / seconds,10:F0} new tokens/s ({seconds * 1000:F0} ms)");
            }
        }

        var pairs = Enumerable.Range(0, s.TrainPairs).SelectMany(_ =>
        {
            var prompt = Tokens(s.TrainTokens / 2);
            return new[] { new PromptResponse(prompt, Tokens(s.TrainTokens / 2)), new PromptResponse(prompt, Tokens(s.TrainTokens / 2)) };
        }).ToList();
        long tokens = (long)pairs.Count * s.TrainTokens;

        ResponseLogProbs.Score(model, pairs, chunkSize: pairs.Count); // warm-up: kernels and allocator for these shapes
        double scoreSeconds = Time(device, s.Repeats, () => ResponseLogProbs.Score(model, pairs, chunkSize: pairs.Count));
        report.WriteLine($"log-probs (no grad) {pairs.Count} x {s.TrainTokens} tokens: {tokens / scoreSeconds:F0} tokens/s ({scoreSeconds * 1000:F0} ms)");

        var reference = ResponseLogProbs.Score(model, pairs, chunkSize: pairs.Count).Select(r => (float)r.Sum).ToArray();
        var settings = new OptimizerSettings { LearningRate = 1e-6, MaxGradNorm = 1.0 };
        using var optimizer = new FlatAdamW(model, settings);
        var refTensor = tensor(reference, device: device);
        void Step()
        {
            using var scope = NewDisposeScope();
            optimizer.ZeroGrad();
            var (lp, _) = ResponseLogProbs.Forward(model, pairs, c.PadTokenId < 0 ? 0 : c.PadTokenId);
            var logps = lp.sum(1);
            var ratio = logps - refTensor;
            var h = ratio.view(-1, 2);
            var loss = -F.logsigmoid(0.1 * (h[.., 0] - h[.., 1])).mean();
            loss.backward();
            optimizer.ClipGradients();
            optimizer.StepOnce();
        }
        Step();
        double trainSeconds = Time(device, s.Repeats, Step);
        // The usual convention (6N per token, as pytorch_reference.py counts) next to the work this step does:
        // the LM head runs only at response tokens here, so 6N per token overstates it.
        double flops = 6.0 * parameters * tokens;
        double tflops = flops / trainSeconds / 1e12;
        long headParameters = (long)c.VocabSize * c.HiddenSize;
        long bodyParameters = parameters - headParameters * (c.TieWordEmbeddings ? 1 : 2);
        long responseTokens = pairs.Sum(p => (long)p.Response.Length);
        double doneTflops = 6.0 * (bodyParameters * tokens + headParameters * responseTokens) / trainSeconds / 1e12;
        report.WriteLine($"DPO train step {s.TrainPairs} pairs x {s.TrainTokens} tokens (fwd+bwd, fp32 log-softmax at response tokens, flat AdamW, clip): " +
                         $"{tokens / trainSeconds:F0} tokens/s, {trainSeconds * 1000:F0} ms, {tflops:F2} TFLOP/s at 6N per token" +
                         (s.PeakTflops > 0 ? $", MFU {100 * tflops / s.PeakTflops:F1}% of {s.PeakTflops}" : "") +
                         $"; work done {doneTflops:F2} TFLOP/s" + (s.PeakTflops > 0 ? $" ({100 * doneTflops / s.PeakTflops:F1}%)" : ""));
    }

    private static double Time(Device device, int repeats, Action action)
    {
        DeviceCheck.Sync(device);
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++) action();
        DeviceCheck.Sync(device);
        return watch.Elapsed.TotalSeconds / repeats;
    }
}
