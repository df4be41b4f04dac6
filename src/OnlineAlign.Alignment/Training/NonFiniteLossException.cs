namespace OnlineAlign.Alignment.Training;

/// <summary>Training produced NaN or Inf: the step is named so the run can pause with a precise error.</summary>
public sealed class NonFiniteLossException(int step, double loss)
    : Exception($"loss became {loss} at training step {step}; the update was not applied")
{
    public int Step { get; } = step;
}
