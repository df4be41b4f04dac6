using System.Diagnostics;
using System.Globalization;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Serving;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// `serve`'s model thread under K concurrent requests (each its own seed, prompt length and max_tokens, and one of four
/// sampling settings: greedy, 0.7, 1.0 with top_p 0.95, 0.8 with top_p 0.9, so a batch mixes them as clients do): one
/// request a batch (MaxBatchRows 1, what serving did before requests were batched) against the default budget, where
/// the requests queued behind a batch decode together in the next one. Random weights, so replies run to their limit
/// unless a stop token comes; tokens are counted as generated.
/// </summary>
public static class ServingBenchmark
{
    public sealed record Settings(string Model, string Device, ScalarType DType, int Requests, int PromptTokens, int NewTokens, int Repeats);

    private static readonly (double Temperature, double TopP)[] Settings4 = [(0, 1), (0.7, 1), (1.0, 0.95), (0.8, 0.9)];

    public static async Task RunAsync(Settings s, TextWriter report)
    {
        var device = DeviceSetting.Resolve(s.Device);
        var config = ModelShapes.ByName(s.Model);
        var tokenizer = new ByteTokenizer();
        using var served = new ServedModel(ModelShapes.Random(config, device, s.DType), tokenizer, s.Model);
        served.Model.eval();
        var random = new Random(0);
        var requests = Enumerable.Range(0, s.Requests).Select(i => new GenerationRequest(
            [tokenizer.BosId, .. Enumerable.Range(0, random.Next(s.PromptTokens / 2, s.PromptTokens + 1)).Select(_ => random.Next(3, 259))],
            random.Next(s.NewTokens / 2, s.NewTokens + 1), Temperature: Settings4[i % 4].Temperature, TopP: Settings4[i % 4].TopP, N: 1,
            Seeds: [(ulong)(1000 + i)], Stop: [],
            Stream: true, IncludeUsage: false)).ToList();
        report.WriteLine($"serving, {s.Model}, {s.DType} on {device}: {s.Requests} concurrent requests, {s.PromptTokens / 2}-{s.PromptTokens}-token prompts, " +
                         $"max_tokens {s.NewTokens / 2}-{s.NewTokens}, n 1, (temperature, top_p) cycling over " +
                         string.Join(", ", Settings4.Select(x => string.Create(CultureInfo.InvariantCulture, $"({x.Temperature}, {x.TopP})"))));
        // Both workers on the one model (each its own thread; they never run at once), alternated so that a load on the
        // machine falls on both alike.
        var modes = new[] { ("one at a time", new ServeLimits { MaxBatchRows = 1 }), ("batched", new ServeLimits()) }
            .Select(m => (Name: m.Item1, Worker: new ModelWorker(served, m.Item2))).ToList();
        try
        {
            foreach (var mode in modes) await Run(mode.Worker, requests.Take(2).ToList()); // warm-up
            for (int r = 0; r < s.Repeats; r++)
                foreach (var (name, worker) in modes)
                {
                    int batches = worker.Batches;
                    var clock = Stopwatch.StartNew();
                    var (tokens, latencies) = await Run(worker, requests);
                    double seconds = clock.Elapsed.TotalSeconds;
                    report.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {name,-14} {seconds,7:F2} s  {s.Requests / seconds,7:F2} requests/s  {tokens / seconds,8:F1} tokens/s  ({tokens} tokens, " +
                        $"{worker.Batches - batches} batches, latency mean {latencies.Average():F2} s, max {latencies.Max():F2} s)"));
                }
        }
        finally
        {
            foreach (var mode in modes) mode.Worker.Dispose();
        }
    }

    /// <summary>Fires every request at once; returns the tokens generated and each request's time to its last piece.</summary>
    private static async Task<(long Tokens, double[] Latencies)> Run(ModelWorker worker, List<GenerationRequest> requests)
    {
        var clock = Stopwatch.StartNew();
        var readers = requests.Select(r => worker.Generate(r, CancellationToken.None)).ToList();
        var done = await Task.WhenAll(readers.Select(async reader =>
        {
            int generated = 0;
            await foreach (var d in reader.ReadAllAsync()) generated = Math.Max(generated, d.Generated);
            return (Tokens: generated, Seconds: clock.Elapsed.TotalSeconds);
        }));
        return (done.Sum(d => (long)d.Tokens), done.Select(d => d.Seconds).ToArray());
    }
}
