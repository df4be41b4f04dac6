using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Training;

namespace OnlineAlign.Execution.Phases;

/// <summary>
/// What a train phase leaves in memory once its checkpoint is written: the trained model and, where the run carries them
/// into the next round (optimizer.carry_state), its AdamW moments. <see cref="ModelCache.Adopt"/> keeps them under the
/// checkpoint's hash; the owner disposes this afterwards (the moments Adopt took are no longer its). Model thread only.
/// </summary>
public sealed class TrainedState(DecoderLM model, OptimizerState? optimizer) : IDisposable
{
    public DecoderLM Model { get; } = model;

    public OptimizerState? Optimizer { get; private set; } = optimizer;

    /// <summary>The moments, given up: nothing trains from them here again, so the cache keeps them without a copy.</summary>
    public OptimizerState? TakeOptimizer()
    {
        var optimizer = Optimizer;
        Optimizer = null;
        return optimizer;
    }

    public void Dispose()
    {
        Model.Dispose();
        Optimizer?.Dispose();
        Optimizer = null;
    }
}
