namespace OnlineAlign.Alignment.Training;

/// <summary>A training step's metrics, with the names TRL users know.</summary>
public sealed record StepMetrics(int Step, double Loss, double RewardsChosen, double RewardsRejected, double RewardsAccuracy,
    double RewardsMargin, double LogpsChosen, double LogpsRejected, double GradNorm, double LearningRate)
{
    public IReadOnlyDictionary<string, double> Named() => new Dictionary<string, double>
    {
        ["loss"] = Loss, ["rewards/chosen"] = RewardsChosen, ["rewards/rejected"] = RewardsRejected,
        ["rewards/accuracies"] = RewardsAccuracy, ["rewards/margins"] = RewardsMargin,
        ["logps/chosen"] = LogpsChosen, ["logps/rejected"] = LogpsRejected, ["grad_norm"] = GradNorm, ["lr"] = LearningRate,
    };
}
