using System.Text.Json.Nodes;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

/// <summary>
/// A fixtures/hf checkpoint against the outputs another implementation recorded for it in its reference.json (logits,
/// a greedy continuation, per-token response log-probs): transformers for llama-tiny, a float64 PyTorch reference for
/// the Qwen3 and Gemma 3 fixtures. One place for the comparison, so every model family is held to the same bar.
/// </summary>
internal static class ReferenceOutputs
{
    public static string Folder(string fixture) => RepositoryPaths.Fixture("hf", fixture);

    public static JsonObject Reference(string fixture) =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Folder(fixture), "reference.json")))!;

    public static int[] Ints(JsonNode? node) => node!.AsArray().Select(n => n!.GetValue<int>()).ToArray();

    /// <summary>The logits of reference.json's input_ids, every position of every row within 1e-4.</summary>
    public static void AssertLogits(string fixture)
    {
        using var scope = NewDisposeScope();
        var reference = Reference(fixture);
        using var model = HfCheckpoint.Load(Folder(fixture));
        var inputs = reference["input_ids"]!.AsArray().Select(Ints).ToArray();
        var expected = reference["logits"]!.AsArray()
            .SelectMany(row => row!.AsArray().SelectMany(pos => pos!.AsArray().Select(v => v!.GetValue<float>()))).ToArray();
        using var noGrad = no_grad();
        var ids = tensor(inputs.SelectMany(r => r.Select(x => (long)x)).ToArray(), [inputs.Length, inputs[0].Length]);
        var logits = model.forward(ids).data<float>().ToArray();
        Assert.Equal(expected.Length, logits.Length);
        double maxDiff = expected.Zip(logits, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDiff < 1e-4, $"{fixture}: max |logit difference| = {maxDiff}");
    }

    /// <summary>The greedy continuation through the KV cache: token for token.</summary>
    public static void AssertGreedy(string fixture)
    {
        var greedy = Reference(fixture)["greedy"]!;
        using var model = HfCheckpoint.Load(Folder(fixture));
        var prompt = Ints(greedy["prompt"]);
        var expected = Ints(greedy["output"]).Skip(prompt.Length).ToArray();
        var result = TextGenerator.Generate(model, [prompt], new SamplingOptions { MaxNewTokens = greedy["max_new_tokens"]!.GetValue<int>(), Temperature = 0 });
        Assert.Equal(expected, result[0].Tokens);
    }

    /// <summary>Each response's per-token log-probs and their sum, within 1e-4.</summary>
    public static void AssertResponseLogProbs(string fixture)
    {
        var cases = Reference(fixture)["sequence_logprobs"]!.AsArray();
        using var model = HfCheckpoint.Load(Folder(fixture));
        var rows = cases.Select(c => new PromptResponse(Ints(c!["prompt"]), Ints(c!["response"]))).ToList();
        var scores = ResponseLogProbs.Score(model, rows);
        for (int i = 0; i < rows.Count; i++)
        {
            var expected = cases[i]!["token_logprobs"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
            Assert.Equal(expected.Length, scores[i].TokenLogProbs.Length);
            for (int t = 0; t < expected.Length; t++)
                Assert.True(Math.Abs(expected[t] - scores[i].TokenLogProbs[t]) < 1e-4, $"{fixture} case {i} token {t}: {scores[i].TokenLogProbs[t]} vs {expected[t]}");
            Assert.True(Math.Abs(cases[i]!["logprob_sum"]!.GetValue<double>() - scores[i].Sum) < 1e-4, $"{fixture} case {i}: the sum");
        }
    }
}
