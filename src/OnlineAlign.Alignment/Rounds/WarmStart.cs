using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;

namespace OnlineAlign.Alignment.Rounds;

/// <summary>Warm start for built-in tasks: a fresh model fine-tuned on noisy demonstrations, so it starts clearly imperfect.</summary>
public static class WarmStart
{
    public sealed record Settings(int Steps = 150, int BatchSize = 32, double LearningRate = 3e-3, double Noise = 0.3, int Demonstrations = 2000);

    /// <summary>The prompts whose (noisy) answers the warm start is fine-tuned on.</summary>
    public static IReadOnlyList<PromptItem> DemonstrationPrompts(IVerifiableTask task, Settings s, int seed) => task.Prompts(s.Demonstrations, seed, "train");

    public static DecoderLM Train(ModelConfig config, ITextTokenizer tokenizer, IVerifiableTask task, Settings s, int seed, out List<double> losses,
        CancellationToken cancellationToken = default)
    {
        var model = BuiltinModels.Create(config, seed);
        var random = new Random(seed);
        var demos = DemonstrationPrompts(task, s, seed)
            .Select(p => Examples.Pair(tokenizer, p.Prompt, task.Demonstrate(p, random, s.Noise))).ToList();
        losses = SftTrainer.Train(model, demos,
            new OptimizerSettings { LearningRate = s.LearningRate, WeightDecay = 0, Schedule = "cosine", WarmupSteps = Math.Min(20, s.Steps / 10) },
            s.Steps, s.BatchSize, seed, Math.Max(0, tokenizer.PadId), cancellationToken);
        return model;
    }
}
