using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Specs;

namespace OnlineAlign.Alignment.Training;

/// <summary>
/// The preference update: pairs with reference log-probs computed beforehand (once per round), a loss
/// from <see cref="Losses.PreferenceLoss"/>, AdamW over flat buffers, gradient clipping, gradient accumulation
/// (one step at a time in <see cref="PreferenceSteps"/>, which data-parallel training shares).
/// Seeded: the same model, pairs and settings give the same weights on CPU. When an optimiser state
/// is passed, AdamW starts from it and it holds the final moments afterwards (carried between rounds).
/// </summary>
public static class PreferenceTrainer
{
    public sealed record Settings(LossSpec Loss, OptimizerSettings Optimizer, int Epochs, int BatchSize, int Seed);

    public static List<StepMetrics> Train(DecoderLM model, IReadOnlyList<PairExample> pairs, Settings s, int padTokenId = 0,
        Action<int, int>? progress = null, OptimizerState? optimizerState = null, CancellationToken cancellationToken = default)
    {
        var metrics = new List<StepMetrics>();
        if (pairs.Count == 0)
        {
            if (s.Loss.Problems(SpecLimits.Default) is [var problem, ..]) throw new ArgumentException(problem);
            return metrics;
        }
        using var steps = new PreferenceSteps(model, pairs, s, padTokenId, optimizerState);
        for (int step = 0; step < steps.Count; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var sums = new double[PreferenceSteps.SumCount];
            if (steps.MicroBatches(step) == 1)
            {
                // No sum to make (and no float32 buffer of the trainable weights' size): the gradient stays where backward put it.
                Add(sums, steps.Backward(step, 0));
                metrics.Add(steps.ApplyInPlace(step, sums));
                progress?.Invoke(step + 1, steps.Count);
                continue;
            }
            for (int micro = 0; micro < steps.MicroBatches(step); micro++)
            {
                Add(sums, steps.Backward(step, micro));
                steps.AddOwn();
            }
            metrics.Add(steps.Apply(step, sums));
            progress?.Invoke(step + 1, steps.Count);
        }
        steps.Finish();
        return metrics;
    }

    /// <summary>Adds a micro-batch's sums into its step's (in micro-batch order, wherever the micro-batch ran).</summary>
    public static void Add(double[] sums, double[] micro)
    {
        for (int k = 0; k < sums.Length; k++) sums[k] += micro[k];
    }
}
