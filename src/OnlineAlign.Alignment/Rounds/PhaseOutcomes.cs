using OnlineAlign.Alignment.Training;

namespace OnlineAlign.Alignment.Rounds;

/// <summary>What the judge phase hands on: scores per prompt and response, CREAM's per-prompt consistency C, and metrics.</summary>
/// <param name="Agreement">a second judge's scores each pair must agree with (judge "self_consistent"), or null</param>
public sealed record JudgeOutcome(double[][] Scores, double[] Consistency, Dictionary<string, double> Metrics, double[][]? Agreement = null);

/// <summary>What the pairs phase hands on: training pairs with reference log-probs and C, and metrics.</summary>
public sealed record PairsOutcome(List<PairExample> Examples, Dictionary<string, double> Metrics);

/// <summary>What the train phase reports: per-step metrics and their means under TRL's names.</summary>
public sealed record TrainOutcome(List<StepMetrics> Steps, Dictionary<string, double> Metrics);
