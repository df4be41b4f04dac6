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
        int JudgePrompts, int JudgeResponses, int Judgements, int JudgeNewTokens, int Repeats, string Device = "cpu", ScalarType DType = ScalarType.Float32);

    public static void Run(Settings s, TextWriter report)
    {
        var device = DeviceSetting.Resolve(s.Device);
        var config = ModelShapes.ByName(s.Model);
        using var generator = new Generator(0);
        using var model = new DecoderLM(config).InitializeLikeTransformers(generator).Place(device, s.DType);
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
        for (int r = 0; r < s.Repeats; r++)
        {
            var clock = Stopwatch.StartNew();
            var outputs = TextGenerator.Generate(model, rows, options, seeds, s.Batch);
            double seconds = clock.Elapsed.TotalSeconds;
            long tokens = outputs.Sum(o => (long)o.Tokens.Length);
            report.WriteLine($"generate {s.Prompts} prompts x {s.Samples} samples, {s.PromptTokens}-token prompts, up to {s.NewTokens} new, batch {s.Batch}: " +
                             $"{seconds:F2} s, {tokens} new tokens ({tokens / (double)rows.Count:F1} a response), {tokens / seconds:F0} new tokens/s, " +
                             $"prefill {(long)rows.Count * s.PromptTokens} prompt tokens of which {(long)(rows.Count - prompts.Count) * s.PromptTokens} repeat a prompt; " +
                             $"outputs {Hash(outputs.SelectMany(o => o.Tokens))}");
        }

        // Judge: Self-Rewarding's rubric around each (prompt, response).
        var groups = Enumerable.Range(0, s.JudgePrompts).Select(_ =>
        {
            var item = new PromptItem(Text(s.PromptTokens), "");
            var responses = Enumerable.Range(0, s.JudgeResponses).Select(_ => tokenizer.Encode(Text(s.PromptTokens / 2))).ToList();
            return new ResponseGroup(item, tokenizer.Encode(item.Prompt), responses, responses.Select(r => tokenizer.Decode(r)).ToList());
        }).ToList();
        long judgeRows = (long)s.JudgePrompts * s.JudgeResponses;
        foreach (var scoring in new[] { LlmJudgeScoring.Sampled, LlmJudgeScoring.Expected })
            for (int r = 0; r < s.Repeats; r++)
            {
                var judge = new LlmJudge(model, tokenizer, s.Judgements,
                    new SamplingOptions { MaxNewTokens = s.JudgeNewTokens, Temperature = 1.0, Seed = 3 }, "rubric", scoring);
                var clock = Stopwatch.StartNew();
                var result = judge.Score(groups);
                double seconds = clock.Elapsed.TotalSeconds;
                string what = scoring == LlmJudgeScoring.Sampled ? $"{s.Judgements} sampled judgements of up to {s.JudgeNewTokens} tokens" : "expected score digit";
                report.WriteLine($"judge {s.JudgePrompts} prompts x {s.JudgeResponses} responses, rubric, {what}: {seconds:F2} s, " +
                                 $"{judgeRows / seconds:F1} responses judged/s; scores {Hash(result.Scores.SelectMany(x => x).Select(v => Math.Round(v, 4)))}");
            }
    }

    private static string Hash<T>(IEnumerable<T> values) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join(",", values))))[..16];
}
