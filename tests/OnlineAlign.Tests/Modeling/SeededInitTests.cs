using OnlineAlign.Modeling;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

public class SeededInitTests
{
    [Fact]
    public async Task TwoModelsFromOneSeedAreIdenticalWhileAnotherThreadDrawsFromTorchsGlobalGenerator()
    {
        using var stop = new CancellationTokenSource();
        // Another test (or run) drawing from torch's process-wide generator at the same moment.
        var noise = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested) { manual_seed(123); using var t = randn(64, 64); }
        });
        try
        {
            for (int i = 0; i < 5; i++)
            {
                using var a = BuiltinModels.Create(BuiltinModels.Tiny, 5);
                using var b = BuiltinModels.Create(BuiltinModels.Tiny, 5);
                var sb = b.state_dict();
                foreach (var (name, t) in a.state_dict()) Assert.True(t.equal(sb[name]).all().item<bool>(), name);
            }
        }
        finally { stop.Cancel(); await noise; }
    }

    [Fact]
    public void DifferentSeedsGiveDifferentWeightsWithTorchsScales()
    {
        using var a = BuiltinModels.Create(BuiltinModels.Tiny, 5);
        using var b = BuiltinModels.Create(BuiltinModels.Tiny, 6);
        var wa = a.state_dict()["model.layers.0.self_attn.q_proj.weight"];
        Assert.False(wa.equal(b.state_dict()["model.layers.0.self_attn.q_proj.weight"]).all().item<bool>());
        // Linear weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)); embeddings N(0, 1); norms 1.
        double bound = 1 / Math.Sqrt(BuiltinModels.Tiny.HiddenSize);
        Assert.True(wa.abs().max().item<float>() <= bound + 1e-6);
        Assert.True(wa.abs().max().item<float>() > bound * 0.9);
        Assert.InRange(a.state_dict()["model.embed_tokens.weight"].std().item<float>(), 0.95, 1.05);
        Assert.True(a.state_dict()["model.norm.weight"].eq(1).all().item<bool>());
    }
}
