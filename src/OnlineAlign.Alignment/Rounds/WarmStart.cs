using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;

namespace OnlineAlign.Alignment.Rounds;

/// <summary>
/// Warm start for built-in tasks, as Self-Rewarding's M1: a fresh model fine-tuned on instruction data
/// (IFT: noisy demonstrations, so it starts clearly imperfect) mixed with evaluation data (EFT: judge
/// prompts with a response and the score the task's checker gives it), so that the model can judge
/// before the first online round. Labels are used here only; online rounds judge without them.
/// </summary>
public static class WarmStart
{
    /// <param name="JudgeExamples">EFT examples mixed into the demonstrations (0: instruction data only)</param>
    /// <param name="JudgeTemplate">the judge prompt the EFT examples are written in (<see cref="JudgePrompts"/>)</param>
    public sealed record Settings(int Steps = 400, int BatchSize = 32, double LearningRate = 3e-3, double Noise = 0.3, int Demonstrations = 2000,
        int JudgeExamples = 2000, string JudgeTemplate = "compact");

    /// <summary>The prompts whose (noisy) answers the warm start is fine-tuned on.</summary>
    public static IReadOnlyList<PromptItem> DemonstrationPrompts(IVerifiableTask task, Settings s, int seed) => task.Prompts(s.Demonstrations, seed, "train");

    /// <summary>The prompts the EFT examples judge responses to (training part of the prompt space, never held out).</summary>
    public static IReadOnlyList<PromptItem> JudgePromptItems(IVerifiableTask task, Settings s, int seed) => task.Prompts(s.JudgeExamples, seed, "eft");

    /// <summary>
    /// EFT examples: a judge prompt holding a response and, as the target, "Score: 5" when the task's checker
    /// accepts the response or "Score: 0" when not. Half the responses are right; the rest carry one or two of
    /// the task's near-miss corruptions, the kind of mistake the noisy demonstrations teach the policy to make.
    /// </summary>
    public static List<(string Prompt, string Target)> JudgeExamples(IVerifiableTask task, Settings s, int seed)
    {
        var random = new Random(seed ^ 0x5eed);
        var examples = new List<(string, string)>(s.JudgeExamples);
        foreach (var item in JudgePromptItems(task, s, seed))
        {
            string response = task.Demonstrate(item, random, noise: 0.5);
            if (response != item.Answer && random.NextDouble() < 0.3) response = task.Demonstrate(item with { Answer = response }, random, noise: 1.0);
            double score = task.Verify(item, response) ? JudgePrompts.MaxScore : 0;
            examples.Add((JudgePrompts.Format(s.JudgeTemplate, item.Prompt, response), JudgePrompts.Judgement(score)));
        }
        return examples;
    }

    public static DecoderLM Train(ModelConfig config, ITextTokenizer tokenizer, IVerifiableTask task, Settings s, int seed, out List<double> losses,
        CancellationToken cancellationToken = default)
    {
        var model = BuiltinModels.Create(config, seed);
        try
        {
            var random = new Random(seed);
            var examples = DemonstrationPrompts(task, s, seed)
                .Select(p => Examples.Pair(tokenizer, p.Prompt, task.Demonstrate(p, random, s.Noise)))
                .Concat(JudgeExamples(task, s, seed).Select(e => Examples.Pair(tokenizer, e.Prompt, e.Target)))
                .ToList();
            losses = SftTrainer.Train(model, examples,
                new OptimizerSettings { LearningRate = s.LearningRate, WeightDecay = 0, Schedule = "cosine", WarmupSteps = Math.Min(20, s.Steps / 10) },
                s.Steps, s.BatchSize, seed, Math.Max(0, tokenizer.PadId), cancellationToken);
            return model;
        }
        catch
        {
            // A cancelled or failed warm start must not leave the model's native memory behind.
            model.Dispose();
            throw;
        }
    }
}
