using System.Text.Json.Nodes;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

/// <summary>Reproduces outputs that Hugging Face transformers 5.17 produced for fixtures/hf/llama-tiny.</summary>
public class HfReferenceTests
{
    private static readonly string Folder = ReferenceOutputs.Folder("llama-tiny");

    [Fact]
    public void LogitsMatchTransformersWithin1e4() => ReferenceOutputs.AssertLogits("llama-tiny");

    [Fact]
    public void GreedyContinuationIsIdenticalToTransformers() => ReferenceOutputs.AssertGreedy("llama-tiny");

    [Fact]
    public void SequenceLogProbsMatchTransformersWithin1e4() => ReferenceOutputs.AssertResponseLogProbs("llama-tiny");

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
