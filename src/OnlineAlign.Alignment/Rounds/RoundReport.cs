using OnlineAlign.Alignment.Training;

namespace OnlineAlign.Alignment.Rounds;

/// <summary>What a committed round reports: metrics by name, warnings in words, and the training steps.</summary>
public sealed record RoundReport(int Round, Dictionary<string, double> Metrics, List<string> Warnings, List<StepMetrics> Steps);
