using System.Text.Json.Nodes;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

public class CheckpointFormatTests
{
    [Fact]
    public void ShardedCheckpointWithIndexLoadsLikeTheSingleFile()
    {
        string source = RepositoryPaths.Fixture("hf", "llama-tiny");
        var tensors = SafeTensors.Read(Path.Combine(source, "model.safetensors"));
        string folder = RepositoryPaths.NewTempFolder("sharded");
        File.Copy(Path.Combine(source, "config.json"), Path.Combine(folder, "config.json"));
        var names = tensors.Keys.Order().ToList();
        var map = new JsonObject();
        for (int shard = 0; shard < 2; shard++)
        {
            string file = $"model-0000{shard + 1}-of-00002.safetensors";
            var part = names.Where((_, i) => i % 2 == shard).ToDictionary(n => n, n => tensors[n]);
            SafeTensors.Write(Path.Combine(folder, file), part);
            foreach (var n in part.Keys) map[n] = file;
        }
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), new JsonObject { ["weight_map"] = map }.ToJsonString());

        using var single = HfCheckpoint.Load(source);
        using var sharded = HfCheckpoint.Load(folder);
        var ids = tensor(new long[] { 3, 4, 5, 6 }).unsqueeze(0);
        Assert.True(single.forward(ids).equal(sharded.forward(ids)).all().item<bool>());
    }

    [Fact]
    public void Float16CheckpointsLoad()
    {
        string source = RepositoryPaths.Fixture("hf", "llama-tiny");
        string folder = RepositoryPaths.NewTempFolder("f16");
        File.Copy(Path.Combine(source, "config.json"), Path.Combine(folder, "config.json"));
        var half = SafeTensors.Read(Path.Combine(source, "model.safetensors")).ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float16));
        SafeTensors.Write(Path.Combine(folder, "model.safetensors"), half);
        using var model = HfCheckpoint.Load(folder, dtype: ScalarType.Float32);
        using var reference = HfCheckpoint.Load(source);
        var ids = tensor(new long[] { 3, 4, 5, 6 }).unsqueeze(0);
        Assert.True((model.forward(ids) - reference.forward(ids)).abs().max().item<float>() < 0.05f);
    }

    [Fact]
    public void WarmupThenCosineAndLinearSchedules()
    {
        var cosine = new OptimizerSettings { LearningRate = 1.0, WarmupSteps = 4, Schedule = "cosine" };
        Assert.Equal([0.25, 0.5, 0.75, 1.0], Enumerable.Range(0, 4).Select(s => cosine.LearningRateAt(s, 14)));
        Assert.Equal(0.5, cosine.LearningRateAt(9, 14), 12);   // halfway through the decay
        Assert.Equal(0.0, cosine.LearningRateAt(14, 14), 12);
        var linear = cosine with { Schedule = "linear" };
        Assert.Equal(0.5, linear.LearningRateAt(9, 14), 12);
        Assert.Throws<ArgumentException>(() => (cosine with { Schedule = "step" }).LearningRateAt(5, 14));
    }
}
