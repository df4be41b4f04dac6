using OnlineAlign.Silo.Api;
using Microsoft.Extensions.DependencyInjection;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Specs;
using Orleans.Serialization;
using V1 = OnlineAlign.Api.V1;

namespace OnlineAlign.Tests.Specs;

/// <summary>The spec's sections: each names every bad field by its path, with lower and upper bounds, and travels intact.</summary>
public class SpecSectionTests
{
    [Fact]
    public void ABadLossKindDoesNotHideABadBeta()
    {
        var problems = RunSpecMapping.Problems(new RunSpec { Loss = new() { Kind = "nonsense", Beta = -1 } });
        Assert.Contains(problems, p => p.StartsWith("loss.kind 'nonsense' is not one of dpo, ipo", StringComparison.Ordinal));
        Assert.Contains("loss.beta must be > 0, got -1", problems);
    }

    [Fact]
    public void EverySectionNamesEveryBadFieldBelowAndAboveItsBounds()
    {
        var l = SpecLimits.Default;
        var below = new RunSpec
        {
            Sampling = new() { Temperature = -1, TopP = 0, TopK = -1, MaxNewTokens = 0, BatchSize = -1 },
            Judge = new() { Kind = "oracle", Judgements = 0, Template = "say {prompt}", Model = "someone" },
            Loss = new() { Beta = 0, LabelSmoothing = -0.1, RpoAlpha = -1, SelmAlpha = -1 },
            Optimizer = new() { LearningRate = 0, WeightDecay = -1, Epochs = 0, BatchSize = 0, MaxGradNorm = -1, WarmupSteps = -1 },
            Model = new() { ChatTemplate = "vicuna", PretrainSteps = -1, Lora = new() { Rank = 0, Alpha = 0, Dropout = -0.1, TargetModules = [] } },
            Prompts = new() { EvalPrompts = -1, EvalStream = "eval" },
        };
        string[] fields = ["model.chat_template", "model.pretrain_steps", "prompts.eval_stream", "model.lora.r", "model.lora.alpha", "model.lora.dropout", "model.lora.target_modules", "prompts.eval_prompts",
            "sampling.temperature", "sampling.top_p", "sampling.top_k", "sampling.max_new_tokens", "sampling.batch_size",
            "judge.kind", "judge.judgements", "judge.template", "judge.model", "loss.beta", "loss.label_smoothing", "loss.rpo_alpha",
            "loss.selm_alpha", "optimizer.learning_rate", "optimizer.weight_decay", "optimizer.epochs", "optimizer.batch_size",
            "optimizer.max_grad_norm", "optimizer.warmup_steps"];
        var problems = RunSpecMapping.Problems(below, countsOnly: true);
        foreach (var field in fields) Assert.Contains(problems, p => p.StartsWith(field + " ", StringComparison.Ordinal));

        var above = new RunSpec
        {
            Sampling = new() { Temperature = l.Coefficient * 2, TopP = 1.5, TopK = l.TopK + 1, MaxNewTokens = l.MaxNewTokens + 1, BatchSize = l.GenerationBatchSize + 1 },
            Judge = new() { Judgements = l.Judgements + 1 },
            Loss = new() { Beta = l.Coefficient * 2, LabelSmoothing = 0.5, RpoAlpha = double.PositiveInfinity, SelmAlpha = double.NaN },
            Optimizer = new() { LearningRate = l.LearningRate * 2, Epochs = l.Epochs + 1, BatchSize = l.TrainingBatchSize + 1, WarmupSteps = l.WarmupSteps + 1 },
            Model = new()
            {
                Builtin = new string('b', l.TextLength + 1), HfFolder = new string('h', l.PathLength + 1),
                Lora = new() { Rank = LoraSpec.MaxRank + 1, Alpha = double.PositiveInfinity, Dropout = 1, TargetModules = ["q_proj", "c_attn"] },
            },
            Prompts = new() { Task = new string('t', l.TextLength + 1), JsonlPath = new string('j', l.PathLength + 1), EvalPrompts = l.EvalPrompts + 1 },
        };
        problems = RunSpecMapping.Problems(above, countsOnly: true);
        foreach (var field in new[] { "model.builtin", "model.hf_folder", "model.lora.r", "model.lora.alpha", "model.lora.dropout", "prompts.task",
                     "prompts.jsonl_path", "prompts.eval_prompts" })
            Assert.Contains(problems, p => p.StartsWith(field + " ", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("model.lora.target_modules: 'c_attn' is not one of", StringComparison.Ordinal));
        Assert.Contains("sampling.top_p must be at most 1, got 1.5", problems);
        Assert.Contains($"judge.judgements must be between 1 and {l.Judgements}, got {l.Judgements + 1}", problems);
        Assert.Contains("loss.label_smoothing must be below 0.5, got 0.5", problems);
        Assert.Contains("loss.selm_alpha must be a finite number, got NaN", problems);
        foreach (var field in new[] { "sampling.temperature", "sampling.top_k", "sampling.max_new_tokens", "sampling.batch_size", "loss.beta",
                     "loss.rpo_alpha", "optimizer.learning_rate", "optimizer.epochs", "optimizer.batch_size", "optimizer.warmup_steps" })
            Assert.Contains(problems, p => p.StartsWith(field + " ", StringComparison.Ordinal));
        Assert.Empty(RunSpecMapping.Problems(new RunSpec(), countsOnly: true));
    }

    [Fact]
    public void EachSectionsFieldsAreItsProtoMessagesFields()
    {
        foreach (var (section, message) in new[] { (typeof(SamplingSpec), V1.SamplingSpec.Descriptor), (typeof(JudgeSpec), V1.JudgeSpec.Descriptor),
                     (typeof(LossSpec), V1.LossSpec.Descriptor), (typeof(OptimizerSpec), V1.OptimizerSpec.Descriptor),
                     (typeof(BudgetSpec), V1.BudgetSpec.Descriptor), (typeof(RetentionSpec), V1.RetentionSpec.Descriptor),
                     (typeof(PromptSpec), V1.PromptSpec.Descriptor) })
            Assert.Equal(message.Fields.InDeclarationOrder().Select(f => f.PropertyName).Order(),
                SectionMapping.Properties(section).Select(p => p.Name).Order());
        // Set fields come back as they were; unset ones are the section's defaults.
        var spec = new RunSpec { Judge = new() { Kind = "llm", RewardModelFolder = "/m", Template = "rubric" }, Loss = new() { Beta = 0.3 } };
        Assert.Equal(spec, SpecConversion.FromProto(SpecConversion.ToProto(spec)));
        Assert.Equal(new LossSpec { Beta = 0.3 }, SpecConversion.FromProto(new V1.RunSpec { Loss = new V1.LossSpec { Beta = 0.3 } }).Loss);
        // The model section (mapped by hand: its LoRA message says r where the section says Rank) and the prompts section.
        var model = new RunSpec
        {
            Model = new()
            {
                HfFolder = "/models/q", BaseFolder = "/models/q-base", PretrainSteps = 9, ChatTemplate = "chatml",
                Lora = new() { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "down_proj"], UseRslora = true },
            },
            Prompts = new() { JsonlPath = "/data/p.jsonl", EvalPrompts = 7, EvalStream = "test" },
        };
        Assert.Equal(model, SpecConversion.FromProto(SpecConversion.ToProto(model)));
        Assert.Equal(new ModelSpec(), SpecConversion.FromProto(new V1.RunSpec()).Model);
    }

    [Fact]
    public void OrleansCarriesTheSectionsIntactNaNIncluded()
    {
        using var services = new ServiceCollection().AddSerializer().BuildServiceProvider();
        var serializer = services.GetRequiredService<Serializer>();
        var spec = new RunSpec
        {
            Sampling = new() { MaxNewTokens = 7 }, Judge = new() { Kind = "llm", RewardModelFolder = "/rm" },
            Loss = new() { Kind = "ipo", Beta = double.NaN }, Optimizer = new() { CarryState = true, LearningRate = 1e-4 },
            Model = new() { HfFolder = "/m", Lora = new() { Rank = 2, TargetModules = ["v_proj"], AdapterFolder = "/a" } },
            Prompts = new() { Task = "add", EvalPrompts = 3 },
        };
        var copy = serializer.Deserialize<RunSpec>(serializer.SerializeToArray(spec));
        Assert.Equal(spec.Model, copy!.Model);
        Assert.Equal(spec.Prompts, copy.Prompts);
        Assert.Equal(spec.Sampling, copy.Sampling);
        Assert.Equal(spec.Judge, copy.Judge);
        Assert.Equal(spec.Optimizer, copy.Optimizer);
        Assert.Equal("ipo", copy.Loss.Kind);
        Assert.True(double.IsNaN(copy.Loss.Beta));
    }

    /// <summary>
    /// The bytes Orleans writes for a spec with every section (and a LoRA section alone), pinned as the silos of the release
    /// before the converters were made one generic type wrote them: a mixed-version cluster and persisted grain calls read them.
    /// </summary>
    [Fact]
    public void TheSectionsWireBytesAreUnchanged()
    {
        using var services = new ServiceCollection().AddSerializer().BuildServiceProvider();
        var serializer = services.GetRequiredService<Serializer>();
        var spec = new RunSpec
        {
            Name = "wire", Rounds = 3, Sampling = new() { MaxNewTokens = 7, TopP = 0.9 }, Judge = new() { Kind = "llm", RewardModelFolder = "/rm" },
            Loss = new() { Kind = "ipo", Beta = double.NaN }, Optimizer = new() { CarryState = true, LearningRate = 1e-4 },
            Budget = new() { MaxTokensPerRound = 1000 }, Retention = new() { KeepLast = 2 }, Guard = new() { Enabled = true },
            Model = new() { HfFolder = "/m", Lora = new() { Rank = 2, TargetModules = ["v_proj"], AdapterFolder = "/a" } },
            Prompts = new() { Task = "add", EvalPrompts = 3 },
        };
        string Hash<T>(T value) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(serializer.SerializeToArray(value)));
        // A field added to a section or to the spec changes these bytes by design (sections travel as JSON by field name,
        // so older readers still read them): pin the new hashes then, deliberately, in the same commit as the field.
        string whole = Hash(spec), lora = Hash(spec.Model.Lora!);
        Assert.True(whole == "bf79418674e2ea9df67ddf19c9f424ad39bdac2dd81549c23896a54b4841e9b3", $"the spec's wire bytes changed: sha256 {whole}");
        Assert.True(lora == "57995769afbc3c906ff3fdf05ab3a8b2538367bb1214e926538c668bf8cb9cb2", $"the LoRA section's wire bytes changed: sha256 {lora}");
    }
}
