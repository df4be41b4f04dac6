using System.Globalization;
using System.Diagnostics;
using System.Security.Cryptography;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// The generation engine on a round's shapes, on random-weight models with a byte tokenizer:
/// <list type="bullet">
/// <item>generate: P prompts x N samples (adjacent, as a round orders them), 64-token prompts, sampled, decoded in
/// batches of the spec's default size; a twelfth of the vocabulary stops a response, so lengths vary as with EOS;</item>
/// <item>judge: Self-Rewarding's rubric around each prompt and response, k sampled judgements each (LLM judge,
/// sampled scoring), and the same prompts scored by the expected score digit (one forward each).</item>
/// </list>
/// Uses only APIs the previous engine had too, so the same file built against an earlier commit measures that
/// commit's engine; each workload prints a sha256 of its outputs, which must match between engines.
/// </summary>
public static class EngineBenchmark
{
    public sealed record Settings(string Model, int Prompts, int Samples, int PromptTokens, int NewTokens, int Batch,
        int JudgePrompts, int JudgeResponses, int Judgements, int JudgeNewTokens, int Repeats, string Device, ScalarType DType,
        int ExpectedPrompts, int ExpectedResponses, string Workloads, string ScoresOut);

    /// <summary>The command's options (see Program.cs), from a lookup of "--name value" arguments with defaults.</summary>
    public static Settings Parse(Func<string, string, string> arg) => new(
        Model: arg("model", "llama-20m"),
        Prompts: int.Parse(arg("prompts", "256"), CultureInfo.InvariantCulture),
        Samples: int.Parse(arg("samples", "8"), CultureInfo.InvariantCulture),
        PromptTokens: int.Parse(arg("prompt", "64"), CultureInfo.InvariantCulture),
        NewTokens: int.Parse(arg("new", "48"), CultureInfo.InvariantCulture),
        Batch: int.Parse(arg("batch", "64"), CultureInfo.InvariantCulture),
        JudgePrompts: int.Parse(arg("judge-prompts", "16"), CultureInfo.InvariantCulture),
        JudgeResponses: int.Parse(arg("judge-responses", "4"), CultureInfo.InvariantCulture),
        Judgements: int.Parse(arg("judgements", "3"), CultureInfo.InvariantCulture),
        JudgeNewTokens: int.Parse(arg("judge-new", "8"), CultureInfo.InvariantCulture),
        Repeats: int.Parse(arg("repeats", "2"), CultureInfo.InvariantCulture),
        Device: arg("device", "cpu"),
        DType: ModelShapes.DType(arg("dtype", "f32")),
        ExpectedPrompts: int.Parse(arg("expected-prompts", "16"), CultureInfo.InvariantCulture),
        ExpectedResponses: int.Parse(arg("expected-responses", "8"), CultureInfo.InvariantCulture),
        Workloads: arg("workloads", "generate,sampled,expected"),
        ScoresOut: arg("scores-out", ""));

    public static void Run(Settings s, TextWriter report)
    {
        var device = DeviceSetting.Resolve(s.Device);
        var config = ModelShapes.ByName(s.Model);
        using var model = ModelShapes.Random(config, device, s.DType);
        var tokenizer = new ByteTokenizer();
        var random = new Random(0);
        string Text(int bytes) => new(Enumerable.Range(0, bytes).Select(_ => (char)random.Next('a', 'z' + 1)).ToArray());
        var stopIds = Enumerable.Range(3, config.VocabSize - 3).Where(t => t % 12 == 0).ToList();
        report.WriteLine($"engine benchmark, {s.Model}, {s.DType} on {device}");

        // Generate: prompts are byte strings, so 64 characters are 64 tokens.
        var prompts = Enumerable.Range(0, s.Prompts).Select(_ => tokenizer.Encode(Text(s.PromptTokens))).ToList();
        var rows = prompts.SelectMany(p => Enumerable.Repeat(p, s.Samples)).ToList();
        var seeds = Enumerable.Range(0, rows.Count).Select(i => 7UL * (ulong)i + 1).ToList();
        var options = new SamplingOptions { MaxNewTokens = s.NewTokens, Temperature = 1.0, TopP = 1.0, StopTokenIds = stopIds, PadTokenId = 0 };
        var workloads = s.Workloads.Split(',');
        for (int r = 0; r < s.Repeats && workloads.Contains("generate"); r++)
        {
            var clock = Stopwatch.StartNew();
            var outputs = TextGenerator.Generate(model, rows, options, seeds, s.Batch);
            double seconds = clock.Elapsed.TotalSeconds;
            long tokens = outputs.Sum(o => (long)o.Tokens.Length);
            report.WriteLine($"generate {s.Prompts} prompts x {s.Samples} samples, {s.PromptTokens}-token prompts, up to {s.NewTokens} new, batch {s.Batch}: " +
                             $"{seconds:F2} s, {tokens} new tokens ({tokens / (double)rows.Count:F1} a response), {tokens / seconds:F0} new tokens/s, " +
                             $"prefill {(long)rows.Count * s.PromptTokens} prompt tokens of which " +
                                 $"{(long)(rows.Count - prompts.Count) * s.PromptTokens} repeat a prompt; " +
                             $"outputs {Hash(outputs.SelectMany(o => o.Tokens))}");
        }

        // Judge: Self-Rewarding's rubric around each (prompt, response); sampled judgements keep every judgement's KV
        // cache at once in the earlier engine, hence fewer responses than the expected-score pass.
        List<ResponseGroup> Groups(int count, int responses) => Enumerable.Range(0, count).Select(_ =>
        {
            var item = new PromptItem(Text(s.PromptTokens), "");
            var ids = Enumerable.Range(0, responses).Select(_ => tokenizer.Encode(Text(s.PromptTokens / 2))).ToList();
            return new ResponseGroup(item, tokenizer.Encode(item.Prompt), ids, ids.Select(r => tokenizer.Decode(r)).ToList());
        }).ToList();
        foreach (var scoring in new[] { LlmJudgeScoring.Sampled, LlmJudgeScoring.Expected })
        {
            bool sampled = scoring == LlmJudgeScoring.Sampled;
            if (!workloads.Contains(sampled ? "sampled" : "expected")) continue;
            var (count, responses) = sampled ? (s.JudgePrompts, s.JudgeResponses) : (s.ExpectedPrompts, s.ExpectedResponses);
            var groups = Groups(count, responses);
            for (int r = 0; r < s.Repeats; r++)
            {
                var judge = new LlmJudge(model, tokenizer, s.Judgements,
                    new SamplingOptions { MaxNewTokens = s.JudgeNewTokens, Temperature = 1.0, Seed = 3 }, "rubric", scoring);
                var clock = Stopwatch.StartNew();
                var result = judge.Score(groups);
                double seconds = clock.Elapsed.TotalSeconds;
                string what = sampled ? $"{s.Judgements} sampled judgements of up to {s.JudgeNewTokens} tokens" : "expected score digit";
                long tokens = groups.Sum(g => g.ResponseTexts.Sum(t => (long)tokenizer.Encode(JudgePrompts.Format("rubric", g.Item.Prompt, t)).Length));
                // Scores in full, one a line, for comparing engines whose arithmetic differs only in order.
                if (s.ScoresOut != "" && !sampled)
                    File.WriteAllLines(s.ScoresOut,
                        result.Scores.SelectMany(x => x).Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
                report.WriteLine($"judge {count} prompts x {responses} responses, rubric, {what}: {seconds:F2} s, " +
                                 $"{count * responses / seconds:F1} responses judged/s, {tokens} judge-prompt tokens; scores " +
                                     $"{Hash(result.Scores.SelectMany(x => x).Select(v => Math.Round(v, 4)))}");
            }
        }
    }

    private static string Hash<T>(IEnumerable<T> values) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join(",", values))))[..16];
}
