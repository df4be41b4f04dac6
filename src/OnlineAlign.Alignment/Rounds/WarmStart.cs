using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Scoring;
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
    /// <param name="EftSource">where the EFT examples' responses come from (<see cref="EftSources"/>)</param>
    /// <param name="SampleTokens">the longest response sampled for an "own_samples" EFT example</param>
    /// <param name="PretrainSteps">steps on the task's unformatted text before IFT + EFT (<see cref="Pretrained"/>: M0)</param>
    public sealed record Settings(int Steps = 400, int BatchSize = 32, double LearningRate = 3e-3, double Noise = 0.3, int Demonstrations = 2000,
        int JudgeExamples = 2000, string JudgeTemplate = "compact", string EftSource = "corruptions", int SampleTokens = 16, int PretrainSteps = 0);

    /// <summary>
    /// "corruptions": the answer or one of the task's near-miss corruptions of it (the errors the noisy demonstrations teach,
    /// so the judge learns exactly the policy's planted error modes). "own_samples": Self-Rewarding's way, the responses the
    /// model trained on the instruction data alone samples for the EFT prompts, scored by the task's checker; the warm start
    /// then trains in two halves, instructions only, then instructions with those judgements.
    /// </summary>
    public static readonly string[] EftSources = ["corruptions", "own_samples"];

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

    /// <summary>
    /// EFT examples from the model's own samples (<see cref="EftSources"/> "own_samples"): one response sampled at
    /// temperature 1 for each EFT prompt, each from its own seed, and as the target the checker's score of it.
    /// </summary>
    public static List<(string Prompt, string Target)> OwnSampleJudgeExamples(DecoderLM model, ITextTokenizer tokenizer, IVerifiableTask task,
        Settings s, int seed, CancellationToken cancellationToken = default)
    {
        var items = JudgePromptItems(task, s, seed);
        var options = new SamplingOptions
        {
            MaxNewTokens = s.SampleTokens, Temperature = 1.0, StopTokenIds = [.. tokenizer.Chat.StopIds], PadTokenId = Math.Max(0, tokenizer.PadId),
        };
        var samples = TextGenerator.Generate(model, items.Select(p => Examples.PromptIds(tokenizer, p.Prompt)).ToList(), options,
            items.Select((_, i) => Seeds.For((ulong)seed, EftRound, i, 0)).ToList(), maxBatch: 64, cancellationToken);
        return items.Select((item, i) =>
        {
            string response = tokenizer.Decode(samples[i].Tokens);
            double score = task.Verify(item, response) ? JudgePrompts.MaxScore : 0;
            return (JudgePrompts.Format(s.JudgeTemplate, item.Prompt, response), JudgePrompts.Judgement(score));
        }).ToList();
    }

    /// <summary>The round number EFT samples' seeds use: none of the online rounds' (they count from 1).</summary>
    private const int EftRound = -1;

    /// <summary>
    /// Pretraining documents: a training-part prompt's operands and its answer as plain text ("4213 1234"), with no task
    /// word, no "=" and no chat layout, trained as next-token prediction over the whole document. The model learns the
    /// task's strings (as a pretrained LM knows its domain) but not the instruction format IFT then teaches.
    /// </summary>
    public static List<PromptResponse> PretrainDocuments(IVerifiableTask task, ITextTokenizer tokenizer, int count, int seed) =>
        task.Prompts(count, seed, "pretrain").Select(p =>
        {
            string body = p.Prompt.TrimEnd('=');
            int space = body.IndexOf(' ', StringComparison.Ordinal);
            string text = (space >= 0 ? body[(space + 1)..] : body) + " " + p.Answer;
            int[] start = tokenizer.BosId >= 0 ? [tokenizer.BosId] : [];
            return new PromptResponse(start, [.. tokenizer.Encode(text), tokenizer.Chat.EndOfResponse]);
        }).ToList();

    /// <summary>
    /// M0: a fresh model from the seed, then <see cref="Settings.PretrainSteps"/> steps on <see cref="PretrainDocuments"/> (none:
    /// the random initialisation). The warm start begins from it; the same seed and settings rebuild it exactly (CREAM's M0).
    /// </summary>
    public static DecoderLM Pretrained(ModelConfig config, ITextTokenizer tokenizer, IVerifiableTask task, Settings s, int seed,
        CancellationToken cancellationToken = default)
    {
        var model = BuiltinModels.Create(config, seed);
        if (s.PretrainSteps <= 0) return model;
        try
        {
            SftTrainer.Train(model, PretrainDocuments(task, tokenizer, s.Demonstrations, seed),
                new OptimizerSettings { LearningRate = s.LearningRate, WeightDecay = 0, Schedule = "cosine", WarmupSteps = Math.Min(20, s.PretrainSteps / 10) },
                s.PretrainSteps, s.BatchSize, seed ^ 0x70e7, Math.Max(0, tokenizer.PadId), cancellationToken);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <param name="m0">the model to start from, owned from here on (a cached copy of <see cref="Pretrained"/> with the same
    /// arguments); null: pretrained here</param>
    public static DecoderLM Train(ModelConfig config, ITextTokenizer tokenizer, IVerifiableTask task, Settings s, int seed, out List<double> losses,
        CancellationToken cancellationToken = default, DecoderLM? m0 = null)
    {
        if (!EftSources.Contains(s.EftSource))
        {
            m0?.Dispose();
            throw new ArgumentException($"eft_source '{s.EftSource}' is not one of {string.Join(", ", EftSources)}");
        }
        var model = m0 ?? Pretrained(config, tokenizer, task, s, seed, cancellationToken);
        try
        {
            var random = new Random(seed);
            var demonstrations = DemonstrationPrompts(task, s, seed)
                .Select(p => Examples.Pair(tokenizer, p.Prompt, task.Demonstrate(p, random, s.Noise))).ToList();
            if (s.EftSource == "own_samples" && s.JudgeExamples > 0)
            {
                int first = s.Steps / 2;
                losses = Sft(model, demonstrations, first);
                var judgements = OwnSampleJudgeExamples(model, tokenizer, task, s, seed, cancellationToken);
                losses.AddRange(Sft(model, demonstrations.Concat(judgements.Select(e => Examples.Pair(tokenizer, e.Prompt, e.Target))).ToList(),
                    s.Steps - first));
                return model;
            }
            losses = Sft(model,
                demonstrations.Concat(JudgeExamples(task, s, seed).Select(e => Examples.Pair(tokenizer, e.Prompt, e.Target))).ToList(), s.Steps);
            return model;
        }
        catch
        {
            // A cancelled or failed warm start must not leave the model's native memory behind.
            model.Dispose();
            throw;
        }

        List<double> Sft(DecoderLM m, List<PromptResponse> examples, int steps) => SftTrainer.Train(m, examples,
            new OptimizerSettings { LearningRate = s.LearningRate, WeightDecay = 0, Schedule = "cosine", WarmupSteps = Math.Min(20, steps / 10) },
            steps, s.BatchSize, seed, Math.Max(0, tokenizer.PadId), cancellationToken);
    }
}
