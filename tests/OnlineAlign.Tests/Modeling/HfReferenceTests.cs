using System.Text.Json.Nodes;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

/// <summary>Reproduces outputs that Hugging Face transformers 5.17 produced for fixtures/hf/llama-tiny.</summary>
public class HfReferenceTests
{
    private static readonly string Folder = RepositoryPaths.Fixture("hf", "llama-tiny");
    private static readonly JsonObject Reference = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "reference.json")))!;

    private static int[] Ints(JsonNode? node) => node!.AsArray().Select(n => n!.GetValue<int>()).ToArray();

    [Fact]
    public void LogitsMatchTransformersWithin1e4()
    {
        using var scope = NewDisposeScope();
        using var model = HfCheckpoint.Load(Folder);
        var inputs = Reference["input_ids"]!.AsArray().Select(Ints).ToArray();
        var expected = Reference["logits"]!.AsArray()
            .SelectMany(row => row!.AsArray().SelectMany(pos => pos!.AsArray().Select(v => v!.GetValue<float>()))).ToArray();
        using var noGrad = no_grad();
        var ids = tensor(inputs.SelectMany(r => r.Select(x => (long)x)).ToArray(), [inputs.Length, inputs[0].Length]);
        var logits = model.forward(ids).data<float>().ToArray();
        Assert.Equal(expected.Length, logits.Length);
        double maxDiff = expected.Zip(logits, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDiff < 1e-4, $"max |logit difference| = {maxDiff}");
    }

    [Fact]
    public void GreedyContinuationIsIdenticalToTransformers()
    {
        using var model = HfCheckpoint.Load(Folder);
        var greedy = Reference["greedy"]!;
        var prompt = Ints(greedy["prompt"]);
        var expected = Ints(greedy["output"]).Skip(prompt.Length).ToArray();
        var result = TextGenerator.Generate(model, [prompt], new SamplingOptions
        {
            MaxNewTokens = greedy["max_new_tokens"]!.GetValue<int>(),
            Temperature = 0,
        });
        Assert.Equal(expected, result[0].Tokens);
    }

    [Fact]
    public void SequenceLogProbsMatchTransformersWithin1e4()
    {
        using var model = HfCheckpoint.Load(Folder);
        var cases = Reference["sequence_logprobs"]!.AsArray();
        var rows = cases.Select(c => new PromptResponse(Ints(c!["prompt"]), Ints(c!["response"]))).ToList();
        var scores = ResponseLogProbs.Score(model, rows);
        for (int i = 0; i < rows.Count; i++)
        {
            var expectedTokens = cases[i]!["token_logprobs"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
            Assert.Equal(expectedTokens.Length, scores[i].TokenLogProbs.Length);
            for (int t = 0; t < expectedTokens.Length; t++)
                Assert.True(Math.Abs(expectedTokens[t] - scores[i].TokenLogProbs[t]) < 1e-4, $"case {i} token {t}: {scores[i].TokenLogProbs[t]} vs {expectedTokens[t]}");
            Assert.True(Math.Abs(cases[i]!["logprob_sum"]!.GetValue<double>() - scores[i].Sum) < 1e-4);
        }
    }

    [Fact]
    public void SaveThenLoadIsBitIdentical()
    {
        string output = RepositoryPaths.NewTempFolder("roundtrip");
        using var model = HfCheckpoint.Load(Folder);
        HfCheckpoint.Save(model, output);
        using var reloaded = HfCheckpoint.Load(output);
        var a = model.state_dict();
        var b = reloaded.state_dict();
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, t) in a)
            Assert.True(t.equal(b[name]).all().item<bool>(), name);
        // The saved file holds exactly the original tensors' bytes.
        var original = SafeTensors.Read(Path.Combine(Folder, "model.safetensors"));
        var saved = SafeTensors.Read(Path.Combine(output, "model.safetensors"));
        foreach (var (name, t) in original)
            Assert.Equal(t.bytes.ToArray(), saved[name].bytes.ToArray());
        // Saving again gives the same bytes.
        string again = RepositoryPaths.NewTempFolder("roundtrip");
        HfCheckpoint.Save(reloaded, again);
        Assert.Equal(File.ReadAllBytes(Path.Combine(output, "model.safetensors")), File.ReadAllBytes(Path.Combine(again, "model.safetensors")));
    }

    [Fact]
    public void MismatchedCheckpointListsMissingAndUnexpectedNames()
    {
        string folder = RepositoryPaths.NewTempFolder("bad-ckpt");
        File.Copy(Path.Combine(Folder, "config.json"), Path.Combine(folder, "config.json"));
        var tensors = SafeTensors.Read(Path.Combine(Folder, "model.safetensors"));
        tensors["model.extra.weight"] = tensors["model.norm.weight"];
        tensors.Remove("model.norm.weight");
        SafeTensors.Write(Path.Combine(folder, "model.safetensors"), tensors);
        var error = Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(folder));
        Assert.Contains("Missing: model.norm.weight", error.Message);
        Assert.Contains("Unexpected: model.extra.weight", error.Message);
    }

    [Fact]
    public void UnsupportedArchitectureIsRefusedByName()
    {
        var json = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "config.json")))!;
        json["model_type"] = "mistral";
        var error = Assert.Throws<NotSupportedException>(() => ModelConfig.FromJson(json));
        Assert.Contains("model_type 'mistral'", error.Message);
        json["model_type"] = "llama";
        json["hidden_act"] = "gelu";
        Assert.Contains("hidden_act 'gelu'", Assert.Throws<NotSupportedException>(() => ModelConfig.FromJson(json)).Message);
    }
}
