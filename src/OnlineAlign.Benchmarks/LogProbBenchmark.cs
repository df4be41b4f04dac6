using System.Diagnostics;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Scoring;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// The log-prob passes of a round (the implicit-reward judge's N responses a prompt; the reference log-probs of a
/// pair's chosen and rejected) with each distinct prompt computed once, against the plain pass that computes it for
/// every row; alternated, on random weights. Prints the largest difference of a response's summed log-prob.
/// </summary>
public static class LogProbBenchmark
{
    public sealed record Settings(string Model, int Prompts, int Samples, int PromptTokens, int ResponseTokens, int Chunk, int Repeats,
        string Device = "cpu", ScalarType DType = ScalarType.Float32);

    public static void Run(Settings s, TextWriter report)
    {
        var device = DeviceSetting.Resolve(s.Device);
        var config = ModelShapes.ByName(s.Model);
        using var model = ModelShapes.Random(config, device, s.DType);
        var random = new Random(0);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => random.Next(3, config.VocabSize)).ToArray();
        var rows = Enumerable.Range(0, s.Prompts).SelectMany(_ =>
        {
            var prompt = Tokens(s.PromptTokens);
            return Enumerable.Range(0, s.Samples).Select(_ => new PromptResponse(prompt, Tokens(random.Next(1, s.ResponseTokens + 1))));
        }).ToList();
        long responseTokens = rows.Sum(r => (long)r.Response.Length);
        report.WriteLine($"log-probs, {s.Model}, {s.DType} on {device}: {s.Prompts} prompts x {s.Samples} responses, {s.PromptTokens}-token prompts, " +
                         $"1-{s.ResponseTokens}-token responses ({responseTokens} tokens), chunks of {s.Chunk} rows");
        // With sharing, each chunk computes each of its distinct prompts once.
        long sharedPromptTokens = rows.Chunk(s.Chunk).Sum(chunk => chunk.Select(r => r.Prompt).Distinct().Sum(p => (long)p.Length));
        ResponseLogProbs.Score(model, rows.Take(s.Chunk).ToList(), s.Chunk); // warm-up
        IReadOnlyList<ResponseScore>? plain = null, shared = null;
        for (int r = 0; r < s.Repeats; r++)
            foreach (bool share in new[] { false, true })
            {
                var clock = Stopwatch.StartNew();
                var scores = ResponseLogProbs.Score(model, rows, s.Chunk, sharePrompts: share);
                double seconds = clock.Elapsed.TotalSeconds;
                if (share) shared = scores; else plain = scores;
                report.WriteLine($"  {(share ? "prompt once" : "plain pass "),-12} {seconds,7:F2} s, {responseTokens / seconds,8:F0} response tokens/s" +
                                 $", prompt tokens computed {(share ? sharedPromptTokens : (long)rows.Count * s.PromptTokens)}");
            }
        double largest = plain!.Zip(shared!, (a, b) => Math.Abs(a.Sum - b.Sum)).Max();
        report.WriteLine($"  largest |difference| of a response's summed log-prob: {largest:E2}");
    }
}
