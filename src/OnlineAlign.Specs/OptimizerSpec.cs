namespace OnlineAlign.Specs;

/// <summary>A round's preference update: AdamW and its batches (runs.proto OptimizerSpec).</summary>
public sealed record OptimizerSpec
{
    public double LearningRate { get; init; } = 3e-5;
    public double WeightDecay { get; init; }
    public int Epochs { get; init; } = 1;
    public int BatchSize { get; init; } = 16;
    /// <summary>Clip the global gradient norm to this; 0: no clipping.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    public int WarmupSteps { get; init; }
    /// <summary>Keep AdamW's moments across rounds (saved with each checkpoint) instead of a fresh optimiser per round,
    /// as Self-Rewarding and CREAM train each iteration.</summary>
    public bool CarryState { get; init; }
    /// <summary>Recompute each decoder layer in the backward pass instead of keeping its activations.</summary>
    public bool GradientCheckpointing { get; init; }
    /// <summary>Micro-batches of batch_size pairs whose gradients add up into one optimiser step (the unit data-parallel training shares out).</summary>
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>
    /// Training across the round's replicas: "auto" (LoRA runs only: the adapter's gradients are small), "on" (full fine-tuning
    /// too), "off". Each replica computes its share of a step's micro-batches; the sum is bit-identical to one replica's.
    /// </summary>
    public string DataParallel { get; init; } = "auto";

    public static readonly IReadOnlyList<string> DataParallelModes = ["auto", "on", "off"];

    public IReadOnlyList<string> Problems(SpecLimits limits)
    {
        var p = new SpecProblems("optimizer");
        p.Real("learning_rate", LearningRate, 0, minIncluded: false, limits.LearningRate);
        p.Real("weight_decay", WeightDecay, 0, minIncluded: true, limits.Coefficient);
        p.Range("epochs", Epochs, 1, limits.Epochs);
        p.Range("batch_size", BatchSize, 1, limits.TrainingBatchSize);
        p.Real("max_grad_norm", MaxGradNorm, 0, minIncluded: true, limits.Coefficient);
        p.Range("warmup_steps", WarmupSteps, 0, limits.WarmupSteps);
        // A step's micro-batches are bounded as a batch's pairs are (each holds at least one pair).
        p.Range("gradient_accumulation", GradientAccumulation, 1, limits.TrainingBatchSize);
        if (!DataParallelModes.Contains(DataParallel))
            p.Add($"optimizer.data_parallel must be one of {string.Join(", ", DataParallelModes)}, got '{DataParallel}'");
        return p.List;
    }
}
