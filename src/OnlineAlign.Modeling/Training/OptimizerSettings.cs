using TorchSharp.Modules;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Training;

/// <summary>AdamW with PyTorch's conventions, and a warmup + decay learning-rate schedule.</summary>
public sealed record OptimizerSettings
{
    public double LearningRate { get; init; } = 1e-6;
    /// <summary>Applied to matrices only; norms and biases are not decayed.</summary>
    public double WeightDecay { get; init; } = 0.01;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>Clip the global gradient norm to this; 0 = no clipping.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    public int WarmupSteps { get; init; }
    /// <summary>constant, linear or cosine decay after warmup.</summary>
    public string Schedule { get; init; } = "constant";
    /// <summary>Micro-batches whose gradients add up before one optimiser step.</summary>
    public int GradientAccumulation { get; init; } = 1;

    /// <summary>AdamW over decay and no-decay groups (TorchSharp's default weight decay is 0, PyTorch's 0.01: we set it).</summary>
    public AdamW Create(DecoderLM model)
    {
        var (decay, noDecay) = model.ParameterGroupsForDecay();
        return optim.AdamW(
        [
            new AdamW.ParamGroup(decay,
                new AdamW.Options { LearningRate = LearningRate, weight_decay = WeightDecay, beta1 = Beta1, beta2 = Beta2, eps = Epsilon }),
            new AdamW.ParamGroup(noDecay, new AdamW.Options { LearningRate = LearningRate, weight_decay = 0, beta1 = Beta1, beta2 = Beta2, eps = Epsilon }),
        ]);
    }

    /// <summary>The learning rate at an optimiser step (0-based) of a run of totalSteps.</summary>
    public double LearningRateAt(int step, int totalSteps)
    {
        if (WarmupSteps > 0 && step < WarmupSteps) return LearningRate * (step + 1) / WarmupSteps;
        double progress = totalSteps <= WarmupSteps ? 0 : (double)(step - WarmupSteps) / Math.Max(1, totalSteps - WarmupSteps);
        progress = Math.Clamp(progress, 0, 1);
        return Schedule switch
        {
            "linear" => LearningRate * (1 - progress),
            "cosine" => LearningRate * 0.5 * (1 + Math.Cos(Math.PI * progress)),
            "constant" => LearningRate,
            _ => throw new ArgumentException($"optimizer.schedule '{Schedule}' is not one of constant, linear, cosine"),
        };
    }

    /// <summary>Clips gradients to MaxGradNorm and returns the norm before clipping.</summary>
    public double ClipGradients(DecoderLM model) =>
        MaxGradNorm > 0 ? nn.utils.clip_grad_norm_(model.parameters().Where(p => p.requires_grad), MaxGradNorm) : GradNorm(model);

    private static double GradNorm(DecoderLM model)
    {
        using var scope = NewDisposeScope();
        var norms = model.parameters().Where(p => p.grad is not null).Select(p => p.grad!.norm().pow(2)).ToList();
        return norms.Count == 0 ? 0 : Math.Sqrt(stack(norms).sum().item<float>());
    }
}
