using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

/// <summary>
/// Response log-probs compute logits only at response targets; they must equal, values and gradients, the
/// plain formula over the full logits.
/// </summary>
public class ResponseLogProbsTests
{
    private static readonly PromptResponse[] Rows =
    [
        new([5, 17, 99, 3], [250, 41, 7]),
        new([8], [123, 64, 9, 10, 11]),
        new([12, 44, 200, 7, 9, 31], [2]),
    ];

    [Fact]
    public void ValuesAndGradientsEqualTheFullLogitsFormula()
    {
        using var model = HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));
        var (lp, mask) = ResponseLogProbs.Forward(model, Rows);
        lp.sum().backward();
        var fast = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        foreach (var p in model.parameters()) p.grad!.zero_();

        var (ids, fullMask) = ResponseLogProbs.Batch(Rows, 0, model.Device);
        long width = ids.shape[1] - 1;
        var plain = model.forward(ids.narrow(1, 0, width)).log_softmax(-1)
            .gather(-1, ids.narrow(1, 1, width).unsqueeze(-1)).squeeze(-1) * fullMask;
        plain.sum().backward();

        Assert.Equal(fullMask.data<float>().ToArray(), mask.data<float>().ToArray());
        Assert.True((lp - plain).abs().max().item<float>() < 1e-5f, "log-probs differ");
        Assert.Equal(0f, (lp * (1 - mask)).abs().max().item<float>());
        foreach (var (name, parameter) in model.named_parameters())
        {
            float diff = (fast[name] - parameter.grad!).abs().max().item<float>();
            float scale = parameter.grad!.abs().max().item<float>();
            Assert.True(diff <= 1e-5f * Math.Max(1f, scale), $"{name}: gradient differs by {diff} (scale {scale})");
        }
    }
}
