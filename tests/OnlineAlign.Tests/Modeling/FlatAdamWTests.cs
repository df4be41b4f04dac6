using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

public class FlatAdamWTests
{
    private static readonly PromptResponse[] Rows = [new([1, 2, 3], [4, 5, 6]), new([7, 8], [9, 10, 11, 12])];

    private static Tensor Loss(DecoderLM model)
    {
        var (lp, mask) = ResponseLogProbs.Forward(model, Rows);
        return -(lp.sum() / mask.sum());
    }

    [Fact]
    public void MatchesTorchAdamWWithDecayGroupsAndClipping()
    {
        var settings = new OptimizerSettings { LearningRate = 1e-2, WeightDecay = 0.1, MaxGradNorm = 0.5 };
        using var reference = HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));
        using var flat = HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));
        var torchOptimizer = settings.Create(reference);
        using var flatOptimizer = new FlatAdamW(flat, settings);
        for (int step = 0; step < 4; step++)
        {
            using var scope = NewDisposeScope();
            torchOptimizer.zero_grad();
            Loss(reference).backward();
            double torchNorm = settings.ClipGradients(reference);
            torchOptimizer.step();

            flatOptimizer.ZeroGrad();
            Loss(flat).backward();
            double flatNorm = flatOptimizer.ClipGradients().item<float>();
            flatOptimizer.StepOnce();
            Assert.True(Math.Abs(torchNorm - flatNorm) < 1e-4 * Math.Max(1, torchNorm), $"step {step}: grad norm {flatNorm} vs {torchNorm}");
        }
        var a = reference.state_dict();
        foreach (var (name, t) in flat.state_dict())
            Assert.True(t.allclose(a[name], rtol: 1e-4, atol: 1e-6), name);
    }

    [Fact]
    public void WeightsStillSaveAndReloadAfterBecomingViews()
    {
        using var model = HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));
        using var optimizer = new FlatAdamW(model, new OptimizerSettings { LearningRate = 1e-2 });
        optimizer.ZeroGrad();
        Loss(model).backward();
        optimizer.StepOnce();
        string folder = RepositoryPaths.NewTempFolder("flat-save");
        HfCheckpoint.Save(model, folder);
        using var reloaded = HfCheckpoint.Load(folder);
        var saved = reloaded.state_dict();
        foreach (var (name, t) in model.state_dict())
            Assert.True(t.equal(saved[name]).all().item<bool>(), name);
    }
}
