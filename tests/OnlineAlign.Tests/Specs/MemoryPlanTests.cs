using OnlineAlign.Specs;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Specs;

/// <summary>The memory plan's counts against real models, and the refusal of a spec that cannot fit (figures vs measured peaks: docs/benchmarks.md).</summary>
public class MemoryPlanTests
{
    [Fact]
    public void ParameterCountsAreTheModelsOwn()
    {
        using var model = HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));
        Assert.Equal(model.parameters().Sum(p => p.NumberOfElements), model.Config.ParameterCount());
        var lora = new LoraSpec { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj", "o_proj", "down_proj"] };
        using (var generator = new Generator(1)) model.AddAdapters(lora, generator);
        Assert.Equal(model.AdapterTensors().Values.Sum(t => t.NumberOfElements), MemoryPlan.AdapterParameters(model.Config, lora));
    }

    [Fact]
    public void LoraShrinksEverythingButTheActivationsAndABigModelIsRefusedWithItsPlan()
    {
        // A Llama-3-8B shape in bf16 on an 80 GB GPU: full fine-tuning cannot fit (16 bytes a parameter before activations); LoRA does.
        var llama8b = new ModelConfig
        {
            ModelType = "llama", VocabSize = 128256, HiddenSize = 4096, IntermediateSize = 14336, NumLayers = 32, NumHeads = 32, NumKeyValueHeads = 8,
            HeadDim = 128, RopeTheta = 500000, MaxPositions = 8192, TorchDtype = "bfloat16",
        };
        var spec = new RunSpec { Reference = "initial", Sampling = new() { BatchSize = 64, MaxNewTokens = 512 }, Judge = new() { Kind = "llm" }, Optimizer = new() { BatchSize = 4 } };
        var full = MemoryPlanning.Plan(spec, llama8b, maxPromptTokens: 512, cpu: false);
        var lora = MemoryPlanning.Plan(spec with { Model = spec.Model with { Lora = new LoraSpec() }}, llama8b, maxPromptTokens: 512, cpu: false);
        Assert.Equal(8.03e9 * 2, full.TrainedCopy, 0.01e9 * 2);
        Assert.Equal(full.TrainedCopy * 8, full.OptimizerState * 2);       // AdamW: two float32 moments per bf16 weight
        Assert.Equal(full.TrainedCopy * 2, full.MasterWeights);              // float32 master copy
        Assert.True(lora.HeldModels < full.HeldModels / 2 + (1L << 30), "LoRA models share one base"); // two held models: one base + two adapters
        Assert.True(lora.OptimizerState < full.OptimizerState / 100);
        Assert.True(lora.Activations < full.Activations && lora.Activations > full.Activations / 2, "a frozen base saves fewer activations, not none");
        var gpu80 = new MemoryPlanning.DeviceBudget("cuda:0", 80L << 30, Cpu: false);
        Assert.True(full.Peak > gpu80.Bytes && lora.Peak < gpu80.Bytes, $"full {MemoryPlan.Gib(full.Peak)}, LoRA {MemoryPlan.Gib(lora.Peak)}");
        string problem = MemoryPlanning.Problem(full, gpu80, lora: false)!;
        Assert.StartsWith("model: the run does not fit cuda:0", problem);
        Assert.Contains("AdamW moments", problem);
        Assert.Contains("model.lora", problem);
        Assert.Null(MemoryPlanning.Problem(lora, gpu80, lora: true));
    }

    [Fact]
    public void ASpecIsRefusedBeforeAnythingLoadsWhenItsPlanExceedsTheDevice()
    {
        var spec = new RunSpec { Device = "cpu" };
        Assert.Empty(RunSpecMapping.Problems(spec, device: new MemoryPlanning.DeviceBudget("cpu", 64L << 30, Cpu: true)));
        var refused = RunSpecMapping.Problems(spec, device: new MemoryPlanning.DeviceBudget("cpu", 4L << 20, Cpu: true));
        Assert.Contains(refused, p => p.StartsWith("model: the run does not fit cpu", StringComparison.Ordinal) && p.Contains("of 4 MiB"));
        Assert.NotNull(RunSpecMapping.Plan(spec, cpu: true));
    }

    /// <summary>What the GPU silo's spec check does (SpecCheckGrain): its device and memory setting make the budget the spec is held to.</summary>
    [Fact]
    public void ASilosDeviceMemorySettingIsTheBudgetItsSpecCheckHoldsASpecTo()
    {
        var roots = new OnlineAlign.Execution.Files.DataRoots([Path.GetTempPath()]);
        var small = new OnlineAlign.Grains.Workers.WorkerSettings("cpu", Path.GetTempPath(), roots, SpecLimits.Default, DeviceMemoryBytes: 4L << 20);
        var spec = new RunSpec { Device = "auto" };
        Assert.Equal(new MemoryPlanning.DeviceBudget("cpu", 4L << 20, Cpu: true, HostBytes: GC.GetGCMemoryInfo().TotalAvailableMemoryBytes), small.Budget(spec));
        Assert.Contains(RunSpecMapping.Problems(spec, small.Limits, small.DataRoots, device: small.Budget(spec)), p => p.StartsWith("model: the run does not fit cpu", StringComparison.Ordinal));
        var measured = small with { DeviceMemoryBytes = 0 };                       // 0: the machine's own memory
        Assert.Equal(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, measured.Budget(spec)!.Bytes);
        Assert.Empty(RunSpecMapping.Problems(spec, measured.Limits, measured.DataRoots, device: measured.Budget(spec)));
    }

    /// <summary>The host joins the plan: a silo's host memory (Silo:HostMemoryBytes) is a budget of its own, named when exceeded.</summary>
    [Fact]
    public void AHostMemoryBudgetIsCheckedBesideTheDevicesAndNamedWhenExceeded()
    {
        var llama8b = new ModelConfig
        {
            ModelType = "llama", VocabSize = 128256, HiddenSize = 4096, IntermediateSize = 14336, NumLayers = 32, NumHeads = 32, NumKeyValueHeads = 8,
            HeadDim = 128, RopeTheta = 500000, MaxPositions = 8192, TorchDtype = "bfloat16",
        };
        var lora = new RunSpec { Model = new() { Lora = new LoraSpec() }, Optimizer = new() { CarryState = true } };
        var host = MemoryPlanning.HostPlan(lora, llama8b, cpu: false);
        Assert.Equal(llama8b.ParameterCount() * 4L, host.Construction);          // a LoRA copy is built in float32 before it shares its base
        Assert.Equal(128256L * 4096 * 4, host.Staging);                          // the embedding: the largest tensor
        Assert.True(host.OptimizerMoments is > 0 and < 1L << 30, "a LoRA run keeps only its adapters' moments");
        var full = MemoryPlanning.HostPlan(new RunSpec { Optimizer = new() { CarryState = true } }, llama8b, cpu: false);
        Assert.Equal(llama8b.ParameterCount() * 8L, full.OptimizerMoments);
        // A fresh optimiser every round (the default) keeps no moments: none are copied to the host or written.
        Assert.Equal(0, MemoryPlanning.HostPlan(new RunSpec(), llama8b, cpu: false).OptimizerMoments);
        Assert.Equal(0, full.Construction);                                      // a full model is built on its device, in its dtype
        Assert.Equal(0, MemoryPlanning.HostPlan(lora, llama8b, cpu: true).Construction); // on a CPU device the model is built where it stays

        var spec = new RunSpec { Model = new() { Lora = new LoraSpec() }, Sampling = new() { BatchSize = 64, MaxNewTokens = 512 }, Judge = new() { Kind = "llm" }, Optimizer = new() { BatchSize = 4 } };
        var device = MemoryPlanning.Plan(spec, llama8b, maxPromptTokens: 512, cpu: false);
        var roomy = new MemoryPlanning.DeviceBudget("cuda:0", 80L << 30, Cpu: false, HostBytes: 256L << 30);
        Assert.Null(MemoryPlanning.Problem(device, host, roomy, lora: true));
        string refusal = MemoryPlanning.Problem(device, host, roomy with { HostBytes = 16L << 30 }, lora: true)!;
        Assert.StartsWith("model: the run does not fit this silo's host memory: host peak", refusal);
        Assert.Contains("of 16.0 GiB", refusal);
        Assert.Contains("(host memory budget, Silo:HostMemoryBytes)", refusal);

        // Through the spec check: a built-in model's spec has a host plan too.
        Assert.Contains(RunSpecMapping.Problems(new RunSpec { Device = "cpu" }, device: new MemoryPlanning.DeviceBudget("cpu", 64L << 30, Cpu: true, HostBytes: 1024)),
            p => p.StartsWith("model: the run does not fit this silo's host memory", StringComparison.Ordinal));
    }
}
