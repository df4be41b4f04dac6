using OnlineAlign.Alignment.Losses;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;

namespace OnlineAlign.Grains.Runs;

/// <summary>Turns a user's run spec into round settings, and lists everything wrong with it, by field.</summary>
public static class RunSpecMapping
{
    public static readonly string[] ReferenceStrategies = ["previous_round", "initial"];

    public static RoundSettings ToRoundSettings(RunSpec s) => new()
    {
        SamplesPerPrompt = s.SamplesPerPrompt,
        Sampling = new SamplingOptions { Temperature = s.Temperature, TopP = s.TopP, TopK = s.TopK, MaxNewTokens = s.MaxNewTokens },
        Judge = s.Judge,
        Judgements = s.Judgements,
        Consistency = s.Consistency,
        PairStrategy = s.PairStrategy,
        MinScoreGap = s.MinScoreGap,
        Loss = new LossSettings { Kind = s.Loss, Beta = s.Beta, LabelSmoothing = s.LabelSmoothing, RpoAlpha = s.RpoAlpha },
        Optimizer = new OptimizerSettings { LearningRate = s.LearningRate, WeightDecay = s.WeightDecay, MaxGradNorm = s.MaxGradNorm, WarmupSteps = s.WarmupSteps },
        Epochs = s.Epochs,
        BatchSize = s.BatchSize,
        EvalMaxNewTokens = s.MaxNewTokens,
        CarryOptimizerState = s.CarryOptimizerState,
        GenerationBatchSize = s.GenerationBatchSize,
    };

    /// <summary>Every problem with the spec, each starting with the field's name. Checked before any work starts.</summary>
    public static List<string> Problems(RunSpec s)
    {
        var problems = ToRoundSettings(s).Problems();
        if (s.Rounds < 1) problems.Add($"rounds must be at least 1, got {s.Rounds}");
        if (s.PromptsPerRound < 1) problems.Add($"prompts_per_round must be at least 1, got {s.PromptsPerRound}");
        if (s.EvalPrompts < 0) problems.Add($"prompts.eval_prompts must be >= 0, got {s.EvalPrompts}");
        if (!ReferenceStrategies.Contains(s.Reference)) problems.Add($"reference '{s.Reference}' is not one of {string.Join(", ", ReferenceStrategies)}");
        if (s.Judge == "reward_model" && (string.IsNullOrEmpty(s.RewardModelFolder) || !File.Exists(Path.Combine(s.RewardModelFolder, RewardModel.HeadFile))))
            problems.Add($"judge.reward_model_folder '{s.RewardModelFolder}' is not a reward model folder (train one with `onlinealign train-reward-model`)");
        if (s.GenerationReplicas < 1) problems.Add($"generation_replicas must be at least 1, got {s.GenerationReplicas}");
        if (s.SftSteps < 0) problems.Add($"sft_steps must be >= 0, got {s.SftSteps}");
        var (tokenizer, context) = ModelProblems(s, problems);
        var prompts = PromptProblems(s, problems);
        if (tokenizer is not null && prompts is not null) problems.AddRange(LengthProblems(s, prompts, tokenizer, context));
        if (s.Device is not ("auto" or "cpu" or "cuda") && !s.Device.StartsWith("cuda:", StringComparison.Ordinal))
            problems.Add($"device '{s.Device}' is not one of cpu, cuda, cuda:N, auto");
        return problems;
    }

    /// <summary>The run's training prompts in their fixed, seeded order: a built-in task's, or the JSONL file's.</summary>
    public static (IVerifiableTask? Task, IReadOnlyList<PromptItem> Prompts) TrainingPrompts(RunSpec spec)
    {
        if (!string.IsNullOrEmpty(spec.PromptsJsonl))
            return (null, JsonlPrompts.Parse(File.ReadLines(spec.PromptsJsonl), spec.PromptsJsonl));
        var task = BuiltinTasks.ByName(spec.Task);
        return (task, task.Prompts(spec.Rounds * spec.PromptsPerRound, (int)(spec.Seed % int.MaxValue) + 1000, "train"));
    }

    /// <summary>The model's tokenizer and context length, when the model part of the spec is usable.</summary>
    private static (ITextTokenizer? Tokenizer, int Context) ModelProblems(RunSpec s, List<string> problems)
    {
        if (string.IsNullOrEmpty(s.HfFolder))
        {
            try { return (new ByteTokenizer(), BuiltinModels.ByName(s.BuiltinModel).MaxPositions); }
            catch (ArgumentException e) { problems.Add("model.builtin: " + e.Message); return (null, 0); }
        }
        if (!Directory.Exists(s.HfFolder)) problems.Add($"model.hf_folder '{s.HfFolder}' does not exist");
        else if (!File.Exists(Path.Combine(s.HfFolder, "config.json"))) problems.Add($"model.hf_folder '{s.HfFolder}' has no config.json");
        else
        {
            int context;
            try { context = ModelConfig.Load(Path.Combine(s.HfFolder, "config.json")).MaxPositions; }
            catch (Exception e) when (e is InvalidDataException or NotSupportedException) { problems.Add("model.hf_folder: " + e.Message); return (null, 0); }
            try { return (TokenizerLoader.Load(s.HfFolder), context); }
            catch (Exception e) when (e is InvalidDataException or FileNotFoundException or System.Text.Json.JsonException or ArgumentException or InvalidOperationException or NotSupportedException)
            {
                problems.Add($"model.hf_folder '{s.HfFolder}': tokenizer: {e.Message}");
            }
        }
        return (null, 0);
    }

    /// <summary>The run's training prompts, when the prompt part of the spec is usable.</summary>
    private static IReadOnlyList<PromptItem>? PromptProblems(RunSpec s, List<string> problems)
    {
        if (string.IsNullOrEmpty(s.PromptsJsonl))
        {
            if (BuiltinTasks.Names.Contains(s.Task)) return TrainingPrompts(s).Prompts;
            problems.Add($"prompts.task '{s.Task}' is not a built-in task ({string.Join(", ", BuiltinTasks.Names)})");
            return null;
        }
        if (s.Judge == "verifier") problems.Add("judge.kind 'verifier' needs a built-in task (a JSONL prompt set has no verifier)");
        if (!File.Exists(s.PromptsJsonl)) { problems.Add($"prompts.jsonl_path '{s.PromptsJsonl}' does not exist"); return null; }
        try { return TrainingPrompts(s).Prompts; }
        catch (InvalidDataException e) { problems.Add("prompts.jsonl_path: " + e.Message); return null; }
    }

    /// <summary>Prompts that leave no room for max_new_tokens in the model's context, by line (the first few).</summary>
    private static IEnumerable<string> LengthProblems(RunSpec s, IReadOnlyList<PromptItem> prompts, ITextTokenizer tokenizer, int context)
    {
        var tooLong = prompts
            .Select(p => (p.Line, Tokens: Alignment.Training.Examples.PromptIds(tokenizer, p.Prompt).Length))
            .Where(p => p.Tokens + s.MaxNewTokens > context).ToList();
        string where = string.IsNullOrEmpty(s.PromptsJsonl) ? $"prompts.task '{s.Task}'" : $"prompts.jsonl_path {s.PromptsJsonl}";
        foreach (var (line, tokens) in tooLong.Take(3))
            yield return $"{where}{(line > 0 ? $":{line}" : "")}: the prompt is {tokens} tokens; with sampling.max_new_tokens {s.MaxNewTokens} it exceeds the model's context of {context}";
        if (tooLong.Count > 3) yield return $"{where}: {tooLong.Count - 3} more prompts exceed the context";
    }
}
