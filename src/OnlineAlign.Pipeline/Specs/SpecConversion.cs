using OnlineAlign.Contracts;
using V1 = OnlineAlign.Api.V1;

namespace OnlineAlign.Pipeline.Specs;

/// <summary>Between the wire's RunSpec (fields optional: unset means the default) and the grains' RunSpec.</summary>
public static class SpecConversion
{
    public static RunSpec FromProto(V1.RunSpec p)
    {
        var d = new RunSpec();
        return new RunSpec
        {
            Name = p.HasName ? p.Name : d.Name,
            BuiltinModel = p.Model?.HasBuiltin == true ? p.Model.Builtin : d.BuiltinModel,
            HfFolder = p.Model?.HasHfFolder == true ? p.Model.HfFolder : null,
            Task = p.Prompts?.HasTask == true ? p.Prompts.Task : d.Task,
            PromptsJsonl = p.Prompts?.HasJsonlPath == true ? p.Prompts.JsonlPath : null,
            EvalPrompts = p.Prompts?.HasEvalPrompts == true ? p.Prompts.EvalPrompts : d.EvalPrompts,
            Rounds = p.HasRounds ? p.Rounds : d.Rounds,
            PromptsPerRound = p.HasPromptsPerRound ? p.PromptsPerRound : d.PromptsPerRound,
            SamplesPerPrompt = p.HasSamplesPerPrompt ? p.SamplesPerPrompt : d.SamplesPerPrompt,
            Temperature = p.Sampling?.HasTemperature == true ? p.Sampling.Temperature : d.Temperature,
            TopP = p.Sampling?.HasTopP == true ? p.Sampling.TopP : d.TopP,
            TopK = p.Sampling?.HasTopK == true ? p.Sampling.TopK : d.TopK,
            MaxNewTokens = p.Sampling?.HasMaxNewTokens == true ? p.Sampling.MaxNewTokens : d.MaxNewTokens,
            GenerationBatchSize = p.Sampling?.HasBatchSize == true ? p.Sampling.BatchSize : d.GenerationBatchSize,
            Judge = p.Judge?.HasKind == true ? p.Judge.Kind : d.Judge,
            Judgements = p.Judge?.HasJudgements == true ? p.Judge.Judgements : d.Judgements,
            RewardModelFolder = p.Judge?.HasRewardModelFolder == true ? p.Judge.RewardModelFolder : null,
            JudgeTemplate = p.Judge?.HasTemplate == true ? p.Judge.Template : d.JudgeTemplate,
            JudgeModel = p.Judge?.HasModel == true ? p.Judge.Model : d.JudgeModel,
            Consistency = p.HasConsistency ? p.Consistency : d.Consistency,
            PairStrategy = p.HasPairStrategy ? p.PairStrategy : d.PairStrategy,
            MinScoreGap = p.HasMinScoreGap ? p.MinScoreGap : d.MinScoreGap,
            Loss = p.Loss?.HasKind == true ? p.Loss.Kind : d.Loss,
            Beta = p.Loss?.HasBeta == true ? p.Loss.Beta : d.Beta,
            LabelSmoothing = p.Loss?.HasLabelSmoothing == true ? p.Loss.LabelSmoothing : d.LabelSmoothing,
            RpoAlpha = p.Loss?.HasRpoAlpha == true ? p.Loss.RpoAlpha : d.RpoAlpha,
            SelmAlpha = p.Loss?.HasSelmAlpha == true ? p.Loss.SelmAlpha : d.SelmAlpha,
            Reference = p.HasReference ? p.Reference : d.Reference,
            LearningRate = p.Optimizer?.HasLearningRate == true ? p.Optimizer.LearningRate : d.LearningRate,
            WeightDecay = p.Optimizer?.HasWeightDecay == true ? p.Optimizer.WeightDecay : d.WeightDecay,
            Epochs = p.Optimizer?.HasEpochs == true ? p.Optimizer.Epochs : d.Epochs,
            BatchSize = p.Optimizer?.HasBatchSize == true ? p.Optimizer.BatchSize : d.BatchSize,
            MaxGradNorm = p.Optimizer?.HasMaxGradNorm == true ? p.Optimizer.MaxGradNorm : d.MaxGradNorm,
            WarmupSteps = p.Optimizer?.HasWarmupSteps == true ? p.Optimizer.WarmupSteps : d.WarmupSteps,
            CarryOptimizerState = p.Optimizer?.HasCarryState == true ? p.Optimizer.CarryState : d.CarryOptimizerState,
            GradientCheckpointing = p.Optimizer?.HasGradientCheckpointing == true ? p.Optimizer.GradientCheckpointing : d.GradientCheckpointing,
            Seed = p.HasSeed ? p.Seed : d.Seed,
            Device = p.HasDevice ? p.Device : d.Device,
            SftSteps = p.HasSftSteps ? p.SftSteps : d.SftSteps,
            GenerationReplicas = p.HasGenerationReplicas ? p.GenerationReplicas : d.GenerationReplicas,
            MaxPhaseAttempts = p.HasMaxPhaseAttempts ? p.MaxPhaseAttempts : d.MaxPhaseAttempts,
            EftExamples = p.HasEftExamples ? p.EftExamples : d.EftExamples,
            ChatTemplate = p.Model?.HasChatTemplate == true ? p.Model.ChatTemplate : d.ChatTemplate,
            Lora = p.Model?.Lora is { } lora ? FromProto(lora) : null,
            MaxTokensPerRound = p.Budget?.HasMaxTokensPerRound == true ? p.Budget.MaxTokensPerRound : d.MaxTokensPerRound,
            MaxPhaseSeconds = p.Budget?.HasMaxPhaseSeconds == true ? p.Budget.MaxPhaseSeconds : d.MaxPhaseSeconds,
            KeepLast = p.Retention?.HasKeepLast == true ? p.Retention.KeepLast : d.KeepLast,
            KeepBest = p.Retention?.HasKeepBest == true ? p.Retention.KeepBest : d.KeepBest,
            BestMetric = p.Retention?.HasBestMetric == true ? p.Retention.BestMetric : d.BestMetric,
        };
    }

    private static LoraSpec FromProto(V1.LoraSpec p)
    {
        var d = new LoraSpec();
        return new LoraSpec
        {
            Rank = p.HasR ? p.R : d.Rank,
            Alpha = p.HasAlpha ? p.Alpha : d.Alpha,
            Dropout = p.HasDropout ? p.Dropout : d.Dropout,
            TargetModules = p.TargetModules.Count > 0 ? p.TargetModules.ToArray() : d.TargetModules,
            UseRslora = p.HasUseRslora ? p.UseRslora : d.UseRslora,
            AdapterFolder = p.HasAdapterFolder ? p.AdapterFolder : null,
        };
    }

    public static V1.RunSpec ToProto(RunSpec s)
    {
        var p = new V1.RunSpec
        {
            Name = s.Name, Rounds = s.Rounds, SamplesPerPrompt = s.SamplesPerPrompt, Consistency = s.Consistency,
            PairStrategy = s.PairStrategy, MinScoreGap = s.MinScoreGap, Reference = s.Reference, Seed = s.Seed, Device = s.Device,
            PromptsPerRound = s.PromptsPerRound, SftSteps = s.SftSteps, GenerationReplicas = s.GenerationReplicas, MaxPhaseAttempts = s.MaxPhaseAttempts,
            EftExamples = s.EftExamples,
            Model = new V1.ModelSpec { Builtin = s.BuiltinModel, ChatTemplate = s.ChatTemplate },
            Prompts = new V1.PromptSpec { Task = s.Task, EvalPrompts = s.EvalPrompts },
            Sampling = new V1.SamplingSpec { Temperature = s.Temperature, TopP = s.TopP, TopK = s.TopK, MaxNewTokens = s.MaxNewTokens, BatchSize = s.GenerationBatchSize },
            Judge = new V1.JudgeSpec { Kind = s.Judge, Judgements = s.Judgements, Template = s.JudgeTemplate, Model = s.JudgeModel },
            Loss = new V1.LossSpec { Kind = s.Loss, Beta = s.Beta, LabelSmoothing = s.LabelSmoothing, RpoAlpha = s.RpoAlpha, SelmAlpha = s.SelmAlpha },
            Optimizer = new V1.OptimizerSpec
            {
                LearningRate = s.LearningRate, WeightDecay = s.WeightDecay, Epochs = s.Epochs, BatchSize = s.BatchSize,
                MaxGradNorm = s.MaxGradNorm, WarmupSteps = s.WarmupSteps, CarryState = s.CarryOptimizerState, GradientCheckpointing = s.GradientCheckpointing,
            },
            Budget = new V1.BudgetSpec { MaxTokensPerRound = s.MaxTokensPerRound, MaxPhaseSeconds = s.MaxPhaseSeconds },
            Retention = new V1.RetentionSpec { KeepLast = s.KeepLast, KeepBest = s.KeepBest, BestMetric = s.BestMetric },
        };
        if (s.HfFolder is not null) p.Model.HfFolder = s.HfFolder;
        if (s.Lora is { } lora)
        {
            p.Model.Lora = new V1.LoraSpec { R = lora.Rank, Alpha = lora.Alpha, Dropout = lora.Dropout, UseRslora = lora.UseRslora };
            p.Model.Lora.TargetModules.AddRange(lora.TargetModules);
            if (lora.AdapterFolder is not null) p.Model.Lora.AdapterFolder = lora.AdapterFolder;
        }
        if (s.PromptsJsonl is not null) p.Prompts.JsonlPath = s.PromptsJsonl;
        if (s.RewardModelFolder is not null) p.Judge.RewardModelFolder = s.RewardModelFolder;
        return p;
    }

    public static V1.Run ToProto(RunStatus s) => new()
    {
        Id = s.RunId, Spec = ToProto(s.Spec), Status = s.State.WireName(), Round = s.Round, Phase = s.Phase,
        CommittedRounds = s.CommittedRounds, Error = s.Error ?? "", StateVersion = s.Version,
    };

    public static V1.RoundMetrics ToProto(RoundRecord r)
    {
        var m = new V1.RoundMetrics
        {
            Round = r.Round, Checkpoint = r.ManifestPath, Epoch = r.Epoch, Superseded = r.Superseded,
            SupersededByEpoch = r.SupersededByEpoch ?? 0, CheckpointDeleted = r.CheckpointDeleted,
        };
        foreach (var (k, v) in r.Metrics) m.Metrics[k] = v;
        foreach (var (k, v) in r.Outputs) m.Outputs[k] = v;
        m.Metrics["time/round_seconds"] = r.Seconds;
        m.Warnings.AddRange(r.Warnings);
        return m;
    }
}
