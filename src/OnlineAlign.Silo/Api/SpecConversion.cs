using OnlineAlign.Contracts;
using OnlineAlign.Specs;
using V1 = OnlineAlign.Api.V1;

namespace OnlineAlign.Silo.Api;

/// <summary>
/// Between the wire's RunSpec (fields optional: unset means the default) and the grains' RunSpec, at the gRPC edge: the
/// pipeline and the grains never see the generated API. Sections map by field name (<see cref="SectionMapping"/>).
/// </summary>
public static class SpecConversion
{
    public static RunSpec FromProto(V1.RunSpec p)
    {
        var d = new RunSpec();
        return new RunSpec
        {
            Name = p.HasName ? p.Name : d.Name,
            Model = FromProto(p.Model),
            Prompts = SectionMapping.FromProto<PromptSpec>(p.Prompts),
            Rounds = p.HasRounds ? p.Rounds : d.Rounds,
            Sampling = SectionMapping.FromProto<SamplingSpec>(p.Sampling),
            Judge = SectionMapping.FromProto<JudgeSpec>(p.Judge),
            Loss = SectionMapping.FromProto<LossSpec>(p.Loss),
            Optimizer = SectionMapping.FromProto<OptimizerSpec>(p.Optimizer),
            Budget = SectionMapping.FromProto<BudgetSpec>(p.Budget),
            Retention = SectionMapping.FromProto<RetentionSpec>(p.Retention),
            Guard = SectionMapping.FromProto<GuardSpec>(p.Guard),
            PromptsPerRound = p.HasPromptsPerRound ? p.PromptsPerRound : d.PromptsPerRound,
            SamplesPerPrompt = p.HasSamplesPerPrompt ? p.SamplesPerPrompt : d.SamplesPerPrompt,
            Consistency = p.HasConsistency ? p.Consistency : d.Consistency,
            PairStrategy = p.HasPairStrategy ? p.PairStrategy : d.PairStrategy,
            MinScoreGap = p.HasMinScoreGap ? p.MinScoreGap : d.MinScoreGap,
            Reference = p.HasReference ? p.Reference : d.Reference,
            Seed = p.HasSeed ? p.Seed : d.Seed,
            Device = p.HasDevice ? p.Device : d.Device,
            SftSteps = p.HasSftSteps ? p.SftSteps : d.SftSteps,
            SftLearningRate = p.HasSftLearningRate ? p.SftLearningRate : d.SftLearningRate,
            GenerationReplicas = p.HasGenerationReplicas ? p.GenerationReplicas : d.GenerationReplicas,
            MaxPhaseAttempts = p.HasMaxPhaseAttempts ? p.MaxPhaseAttempts : d.MaxPhaseAttempts,
            EftExamples = p.HasEftExamples ? p.EftExamples : d.EftExamples,
            EftSource = p.HasEftSource ? p.EftSource : d.EftSource,
        };
    }

    // The model section by hand: its LoRA sub-message names its fields as PEFT does (r), the section as C# does (Rank).
    private static ModelSpec FromProto(V1.ModelSpec? p)
    {
        var d = new ModelSpec();
        if (p is null) return d;
        return new ModelSpec
        {
            Builtin = p.HasBuiltin ? p.Builtin : d.Builtin,
            HfFolder = p.HasHfFolder ? p.HfFolder : null,
            ChatTemplate = p.HasChatTemplate ? p.ChatTemplate : d.ChatTemplate,
            BaseFolder = p.HasBaseFolder ? p.BaseFolder : null,
            PretrainSteps = p.HasPretrainSteps ? p.PretrainSteps : d.PretrainSteps,
            Lora = p.Lora is { } lora ? FromProto(lora) : null,
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
            EftExamples = s.EftExamples, EftSource = s.EftSource, SftLearningRate = s.SftLearningRate,
            Model = new V1.ModelSpec { Builtin = s.Model.Builtin, ChatTemplate = s.Model.ChatTemplate, PretrainSteps = s.Model.PretrainSteps },
            Prompts = SectionMapping.ToProto<V1.PromptSpec>(s.Prompts),
            Sampling = SectionMapping.ToProto<V1.SamplingSpec>(s.Sampling),
            Judge = SectionMapping.ToProto<V1.JudgeSpec>(s.Judge),
            Loss = SectionMapping.ToProto<V1.LossSpec>(s.Loss),
            Optimizer = SectionMapping.ToProto<V1.OptimizerSpec>(s.Optimizer),
            Budget = SectionMapping.ToProto<V1.BudgetSpec>(s.Budget),
            Retention = SectionMapping.ToProto<V1.RetentionSpec>(s.Retention),
            Guard = SectionMapping.ToProto<V1.GuardSpec>(s.Guard),
        };
        if (s.Model.HfFolder is not null) p.Model.HfFolder = s.Model.HfFolder;
        if (s.Model.BaseFolder is not null) p.Model.BaseFolder = s.Model.BaseFolder;
        if (s.Model.Lora is { } lora)
        {
            p.Model.Lora = new V1.LoraSpec { R = lora.Rank, Alpha = lora.Alpha, Dropout = lora.Dropout, UseRslora = lora.UseRslora };
            p.Model.Lora.TargetModules.AddRange(lora.TargetModules);
            if (lora.AdapterFolder is not null) p.Model.Lora.AdapterFolder = lora.AdapterFolder;
        }
        return p;
    }

    public static V1.Run ToProto(RunStatus s)
    {
        var run = new V1.Run
        {
            Id = s.RunId, Spec = ToProto(s.Spec), Status = s.State.WireName(), Round = s.Round, Phase = s.Phase,
            CommittedRounds = s.CommittedRounds, Error = s.Error ?? "", StateVersion = s.Version,
            BestReason = s.BestReason ?? "", StopReason = s.StopReason ?? "",
        };
        if (s.BestRound is { } best) run.BestRound = best;
        if (s.ForkedFrom is { } lineage) run.ForkedFrom = new V1.Lineage { RunId = lineage.ParentRunId, Round = lineage.ParentRound };
        return run;
    }

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
