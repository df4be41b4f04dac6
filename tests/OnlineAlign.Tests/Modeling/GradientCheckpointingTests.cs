using OnlineAlign.Specs;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

public class GradientCheckpointingTests
{
    private static readonly PromptResponse[] Rows = [new([1, 2, 3, 4], [5, 6, 7]), new([8, 9], [10, 11, 12, 13, 14])];

    /// <summary>Every parameter's gradient after one backward, and the dropout generator's state after it.</summary>
    private static (Dictionary<string, Tensor> Grads, Tensor? DropoutState) Backward(bool checkpointing, LoraSpec? lora)
    {
        using var model = HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));
        if (lora is not null)
        {
            using var init = new Generator(7);
            model.AddAdapters(lora, init);
            using var noGrad = no_grad();
            foreach (var (_, layer) in model.Adapted()) layer.AdapterB.normal_(0, 0.05, init);
        }
        model.GradientCheckpointing = checkpointing;
        using var dropout = new Generator(3);
        using (lora is null ? null : model.AdapterDropout(dropout))
        {
            var (logProbs, mask) = ResponseLogProbs.Forward(model, Rows);
            (-(logProbs.sum() / mask.sum())).backward();
        }
        var grads = model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        return (grads, lora is null ? null : dropout.get_state());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CheckpointedGradientsEqualThePlainBackward(bool lora)
    {
        var settings = lora ? new LoraSpec { Rank = 4, Alpha = 8, Dropout = 0.3, TargetModules = LoraSpec.AdaptableModules } : null;
        var (plain, plainDropout) = Backward(checkpointing: false, settings);
        var (checkpointed, checkpointedDropout) = Backward(checkpointing: true, settings);
        Assert.Equal(plain.Keys.Order(), checkpointed.Keys.Order());
        Assert.Equal(lora ? 2 * 7 * 2 : 2 * 9 + 3, plain.Count); // LoRA: A and B of 7 projections in 2 layers; full: every parameter
        foreach (var (name, grad) in plain)
        {
            float scale = grad.abs().max().item<float>();
            Assert.True(scale > 0, $"{name} has no gradient: the comparison would prove nothing");
            float difference = (grad - checkpointed[name]).abs().max().item<float>();
            Assert.True(difference <= 1e-5f * Math.Max(1, scale), $"{name}: checkpointed gradient differs by {difference} (scale {scale})");
        }
        // The recomputation replayed the forward's dropout masks and left the generator where the forward left it.
        if (lora) Assert.True(plainDropout!.equal(checkpointedDropout!).all().item<bool>());
    }
}
