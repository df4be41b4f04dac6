using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;

namespace OnlineAlign.Alignment.Controls;

/// <summary>
/// Controls the label-free experiment compares a self-judged round with (docs/experiments.md), where they are not run
/// recipes of their own (random pairs and RFT are: pair_strategy random, loss.kind rft). Extra SFT asks whether the
/// same number of supervised steps on the warm start's own data gives the gain; best-of-N asks whether the judge's signal
/// is worth more spent at test time (reranking N samples) than trained into the policy.
/// </summary>
public static class ExperimentControls
{
    /// <summary>Greedy accuracy on prompts, decoded and checked exactly as a run's evaluation does (eval/accuracy).</summary>
    public static double GreedyAccuracy(DecoderLM model, ITextTokenizer tokenizer, IVerifiableTask task, IReadOnlyList<PromptItem> prompts,
        int maxNewTokens, int batchSize, CancellationToken cancellationToken = default)
    {
        if (prompts.Count == 0) return double.NaN;
        var answers = GreedyAnswers(model, tokenizer, prompts, maxNewTokens, batchSize, cancellationToken);
        return prompts.Select((p, i) => task.Verify(p, answers[i].Text) ? 1.0 : 0.0).Average();
    }

    /// <summary>
    /// A frozen judge's mean score of a policy's greedy answers (scores it could not give left out; NaN if it gave none): a
    /// label-free estimate of the policy's quality. With the round-0 model as the judge, training cannot move the judge
    /// along with the policy, as it moves the policy's own judge; the experiment asks whether the estimate follows accuracy.
    /// </summary>
    public static double FrozenJudgeScore(DecoderLM policy, ITextTokenizer tokenizer, IJudge frozenJudge, IReadOnlyList<PromptItem> prompts,
        int maxNewTokens, int batchSize, CancellationToken cancellationToken = default)
    {
        var answers = GreedyAnswers(policy, tokenizer, prompts, maxNewTokens, batchSize, cancellationToken);
        var groups = prompts.Select((p, i) => new ResponseGroup(p, Examples.PromptIds(tokenizer, p.Prompt), [answers[i].Tokens], [answers[i].Text], i))
            .ToList();
        var scored = frozenJudge.Score(groups, cancellationToken).Scores.Select(r => r[0]).Where(double.IsFinite).ToList();
        return scored.Count > 0 ? scored.Average() : double.NaN;
    }

    private static List<(int[] Tokens, string Text)> GreedyAnswers(DecoderLM model, ITextTokenizer tokenizer, IReadOnlyList<PromptItem> prompts,
        int maxNewTokens, int batchSize, CancellationToken cancellationToken)
    {
        var options = new SamplingOptions { MaxNewTokens = maxNewTokens, Temperature = 0, StopTokenIds = [.. tokenizer.Chat.StopIds],
            PadTokenId = Math.Max(0, tokenizer.PadId) };
        var greedy = TextGenerator.Generate(model, prompts.Select(p => Examples.PromptIds(tokenizer, p.Prompt)).ToList(), options,
            maxBatch: batchSize, cancellationToken: cancellationToken);
        return greedy.Select(g => (g.Tokens, tokenizer.Decode(g.Tokens))).ToList();
    }

    /// <summary>The response best-of-N keeps: the highest score (the first of equals); NaN scores never win; all NaN: the first sample.</summary>
    public static int Pick(IReadOnlyList<double> scores)
    {
        int best = 0;
        for (int i = 1; i < scores.Count; i++)
            if (!double.IsNaN(scores[i]) && (double.IsNaN(scores[best]) || scores[i] > scores[best])) best = i;
        return best;
    }

    /// <summary>
    /// Best-of-N reranking at test time: N samples per prompt from the policy (the round's sampling settings, seeds of their own
    /// round number so no training round's samples are reused), scored by the judge, the <see cref="Pick"/> checked.
    /// </summary>
    /// <returns>the accuracy of the picked responses, and the share of prompts whose samples the judge scored none of</returns>
    public static (double Accuracy, double Unscored) BestOfN(DecoderLM policy, ITextTokenizer tokenizer, IVerifiableTask task,
        IReadOnlyList<PromptItem> prompts, RoundSettings settings, IJudge judge, ulong seed, CancellationToken cancellationToken = default)
    {
        if (prompts.Count == 0) return (double.NaN, double.NaN);
        var groups = RoundPhases.Generate(policy, tokenizer, prompts, Enumerable.Range(0, prompts.Count).ToList(), settings, seed, BestOfNRound,
            cancellationToken);
        var scores = judge.Score(groups, cancellationToken).Scores;
        double correct = 0, unscored = 0;
        for (int p = 0; p < groups.Count; p++)
        {
            if (scores[p].All(double.IsNaN)) unscored++;
            if (task.Verify(groups[p].Item, groups[p].ResponseTexts[Pick(scores[p])])) correct++;
        }
        return (correct / groups.Count, unscored / groups.Count);
    }

    /// <summary>The round number best-of-N's sample seeds use (none of the online rounds', the EFT samples' or LoRA's).</summary>
    public const int BestOfNRound = -8;

    /// <summary>
    /// Extra SFT: <paramref name="steps"/> more steps of the warm start's supervised loss on fresh noisy demonstrations (the
    /// warm start's noise, a training-part stream of their own per round), at the round's learning rate and batch size, so a
    /// round of it costs the optimiser steps a DPO round takes.
    /// </summary>
    /// <returns>each step's loss</returns>
    public static List<double> ExtraSft(DecoderLM model, ITextTokenizer tokenizer, IVerifiableTask task, int steps, int batchSize, double learningRate,
        double noise, int seed, int round, CancellationToken cancellationToken = default)
    {
        if (steps <= 0) return [];
        var random = new Random(seed ^ (round * 7919));
        var demonstrations = task.Prompts(Math.Max(steps * batchSize, 64), seed, $"sft-extra-{round}")
            .Select(p => Examples.Pair(tokenizer, p.Prompt, task.Demonstrate(p, random, noise))).ToList();
        return SftTrainer.Train(model, demonstrations, new OptimizerSettings { LearningRate = learningRate, WeightDecay = 0 }, steps, batchSize,
            seed + round, Math.Max(0, tokenizer.PadId), cancellationToken);
    }

    /// <summary>The optimiser steps of a DPO round over <paramref name="pairs"/> pairs (what extra SFT is matched to).</summary>
    public static int RoundSteps(int pairs, int batchSize, int epochs) => epochs * ((pairs + batchSize - 1) / batchSize);
}
