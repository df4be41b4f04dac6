using System.Globalization;
using System.Text.Json.Nodes;
using OnlineAlign.Api.V1;
using OnlineAlign.Cli.Client;
using OnlineAlign.Modeling.Checkpoints;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// The product itself on a real-size model (gpu_round.sh): a random-weight Hugging Face folder of a benchmark shape
/// with a real tokenizer and chat template, and one run through an already started cluster's API, timed phase by
/// phase from the run's own round metrics (time/*).
/// </summary>
public static class ProductRound
{
    private static readonly string[] TokenizerFiles = ["tokenizer.json", "tokenizer_config.json"];

    /// <summary>
    /// Qwen2-0.5B's depth, GQA and its full vocabulary at a tiny width: a real Qwen tokenizer fits it, and a round
    /// runs on a CPU in seconds (the smoke-test shape of gpu_round.sh).
    /// </summary>
    public static readonly OnlineAlign.Modeling.ModelConfig Qwen2TinyVocab = ModelShapes.Qwen2Narrow with
    {
        VocabSize = ModelShapes.Qwen2_0_5B.VocabSize, NumLayers = 2, MaxPositions = 4096,
        EosTokenId = ModelShapes.Qwen2_0_5B.EosTokenId, PadTokenId = ModelShapes.Qwen2_0_5B.PadTokenId,
    };

    private static OnlineAlign.Modeling.ModelConfig Shape(string name) => name == "qwen2-tiny-vocab" ? Qwen2TinyVocab : ModelShapes.ByName(name);

    /// <summary>
    /// Writes the folder: random weights (seed 1), the tokenizer folder's tokenizer.json and tokenizer_config.json, and
    /// prompts.jsonl. The final norm's weights are scaled down 20-fold: a random model's logits (std about 10 here) make
    /// sampling at temperature 0.8 all but greedy, so a prompt's samples came out identical, every judge scored them equal,
    /// no pair was kept and nothing trained; a trained model's next-token distribution is nothing like one-hot.
    /// </summary>
    public static void MakeFolder(string shape, string tokenizerFolder, string folder, int prompts, TextWriter report)
    {
        var config = Shape(shape);
        var files = TokenizerFiles.Select(name =>
        {
            string path = Path.Combine(tokenizerFolder, name);
            if (!File.Exists(path)) throw new FileNotFoundException($"--tokenizer: '{tokenizerFolder}' has no {name}", path);
            return (name, File.ReadAllText(path));
        }).ToList();
        using (var model = OnlineAlign.Modeling.BuiltinModels.Create(config, 1))
        {
            using (TorchSharp.torch.no_grad())
                (model.get_parameter("model.norm.weight") ?? throw new InvalidOperationException("no model.norm.weight")).mul_(0.05);
            HfCheckpoint.Save(model, folder, files);
        }
        // Open questions a rubric judge can score; the random model's answers are noise, the timing is what counts.
        string[] topics = ["sorting algorithms", "the water cycle", "prime numbers", "photosynthesis", "TCP handshakes", "binary search", "tides", "compilers"];
        File.WriteAllLines(Path.Combine(folder, "prompts.jsonl"), Enumerable.Range(0, prompts).Select(i =>
            new JsonObject { ["prompt"] = $"Explain {topics[i % topics.Length]} to a student in a short paragraph (question {i + 1})." }.ToJsonString()));
        report.WriteLine($"model folder {folder}: shape {shape} ({config.NumLayers} layers, hidden {config.HiddenSize}, vocab " +
            $"{config.VocabSize}), tokenizer from {tokenizerFolder}, {prompts} prompts");
    }

    public sealed record Settings(string Api, string Folder, string Device, int Rounds, int Prompts, int Samples, int NewTokens,
        int JudgeNewTokens, int BatchSize, int LoraRank, string Judge = "llm");

    /// <summary>Starts the run through the API, waits for it, and reports each round's phases and throughput.</summary>
    public static async Task RunAsync(Settings s, TextWriter report)
    {
        var client = ApiConnection.Client(s.Api, null);
        var model = new ModelSpec { HfFolder = Path.GetFullPath(s.Folder) };
        if (s.LoraRank > 0) model.Lora = new LoraSpec { R = s.LoraRank, Alpha = 2 * s.LoraRank };
        var spec = new RunSpec
        {
            Name = s.LoraRank > 0 ? "gpu-round-lora" : "gpu-round", Rounds = s.Rounds, PromptsPerRound = s.Prompts, SamplesPerPrompt = s.Samples,
            Seed = 1, Device = s.Device, Model = model,
            Sampling = new SamplingSpec { MaxNewTokens = s.NewTokens, BatchSize = s.BatchSize },
            Prompts = new PromptSpec { JsonlPath = Path.GetFullPath(Path.Combine(s.Folder, "prompts.jsonl")), EvalPrompts = Math.Min(s.Prompts, 32) },
            // A random model's rubric judgements hold no score, so its rounds keep no pair and train nothing; `likelihood` scores
            // every response (the policy's length-normalised log-likelihood), so the round takes DPO steps.
            Judge = s.Judge == "llm" ? new JudgeSpec { Kind = "llm", Template = "rubric", Judgements = 1, MaxNewTokens = s.JudgeNewTokens }
                : new JudgeSpec { Kind = s.Judge },
        };
        report.WriteLine($"run: {spec}");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var run = await client.StartRunAsync(new StartRunRequest { Spec = spec });
        Run status;
        while (true)
        {
            await Task.Delay(1000);
            status = await client.GetRunAsync(new GetRunRequest { RunId = run.Id });
            if (status.Status == "completed") break;
            if (status.Status is "failed" or "paused" or "cancelled") throw new InvalidOperationException($"run {run.Id} {status.Status}: {status.Error}");
        }
        report.WriteLine($"run {run.Id}: completed in {clock.Elapsed.TotalSeconds:F1} s wall (start to completed, warm start and round 0 evaluation included)");
        if (status.MemoryPlan.Length > 0) report.WriteLine($"memory plan: {status.MemoryPlan}");
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds.ToList();
        double M(RoundMetrics r, string key) => r.Metrics.TryGetValue(key, out var v) ? v : double.NaN;
        report.WriteLine("| round | wall s | generate s | judge s | train s | evaluate s | checkpoint s | generated tokens/s | trained tokens/s | pairs |");
        report.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rounds.Where(r => r.Round > 0))
        {
            double generated = s.Prompts * s.Samples * M(r, "generation/length_mean");
            double trained = M(r, "pairs/kept") * (M(r, "lengths/chosen") + M(r, "lengths/rejected"));
            report.WriteLine($"| {r.Round} | {M(r, "time/round"):F2} | {M(r, "time/generate"):F2} | {M(r, "time/judge"):F2} | {M(r, "time/train"):F2} | " +
                             $"{M(r, "time/evaluate"):F2} | {M(r, "time/checkpoint"):F2} | {generated / M(r, "time/generate"):F0} | " +
                             $"{(trained > 0 ? (trained / M(r, "time/train")).ToString("F0", CultureInfo.InvariantCulture) : "- (no pairs)")} | " +
                                 $"{M(r, "pairs/kept"):F0} |");
        }
        // Why a round kept the pairs it did (a judge whose scores tie or are missing keeps none, and then nothing trains).
        foreach (var r in rounds.Where(r => r.Round > 0))
            report.WriteLine($"round {r.Round} judge/* and pairs/*: " + string.Join(", ", r.Metrics
                .Where(kv => kv.Key.StartsWith("judge/", StringComparison.Ordinal) || kv.Key.StartsWith("pairs/", StringComparison.Ordinal))
                .OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} {kv.Value:G4}")));
        foreach (var r in rounds.Where(r => r.Round > 0))
            report.WriteLine($"round {r.Round} time/*: " + string.Join(", ", r.Metrics.Where(kv => kv.Key.StartsWith("time/", StringComparison.Ordinal))
                .OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key[5..]} {kv.Value:F3}")));
    }
}
