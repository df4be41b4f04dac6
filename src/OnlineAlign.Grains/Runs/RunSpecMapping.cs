using OnlineAlign.Alignment.Losses;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
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
        if (string.IsNullOrEmpty(s.HfFolder))
        {
            try { BuiltinModels.ByName(s.BuiltinModel); } catch (ArgumentException e) { problems.Add("model.builtin: " + e.Message); }
        }
        else if (!Directory.Exists(s.HfFolder)) problems.Add($"model.hf_folder '{s.HfFolder}' does not exist");
        else if (!File.Exists(Path.Combine(s.HfFolder, "config.json"))) problems.Add($"model.hf_folder '{s.HfFolder}' has no config.json");
        else
        {
            try { ModelConfig.Load(Path.Combine(s.HfFolder, "config.json")); }
            catch (Exception e) when (e is InvalidDataException or NotSupportedException) { problems.Add("model.hf_folder: " + e.Message); }
        }
        if (string.IsNullOrEmpty(s.PromptsJsonl))
        {
            if (!BuiltinTasks.Names.Contains(s.Task)) problems.Add($"prompts.task '{s.Task}' is not a built-in task ({string.Join(", ", BuiltinTasks.Names)})");
        }
        else if (!File.Exists(s.PromptsJsonl)) problems.Add($"prompts.jsonl_path '{s.PromptsJsonl}' does not exist");
        else
        {
            try { JsonlPrompts.Parse(File.ReadLines(s.PromptsJsonl), s.PromptsJsonl); }
            catch (InvalidDataException e) { problems.Add("prompts.jsonl_path: " + e.Message); }
            if (s.Judge == "verifier") problems.Add("judge.kind 'verifier' needs a built-in task (a JSONL prompt set has no verifier)");
        }
        if (s.Device is not ("auto" or "cpu" or "cuda") && !s.Device.StartsWith("cuda:", StringComparison.Ordinal))
            problems.Add($"device '{s.Device}' is not one of cpu, cuda, cuda:N, auto");
        return problems;
    }
}
