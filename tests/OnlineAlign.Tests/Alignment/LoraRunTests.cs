using OnlineAlign.Specs;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Execution.InProcess;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Alignment;

/// <summary>LoRA runs through the cluster's own phase functions (InProcessRun): what trains, what a checkpoint holds, determinism.</summary>
public class LoraRunTests
{
    private static RunSpec Spec() => new()
    {
        Prompts = new() { Task = "sort", EvalPrompts = 32 }, SftSteps = 100, EftExamples = 0, Rounds = 2, PromptsPerRound = 64, SamplesPerPrompt = 4,
        Seed = 3, Device = "cpu", Sampling = new() { MaxNewTokens = 8 }, Judge = new() { Kind = "verifier" },
        Optimizer = new() { LearningRate = 1e-3, BatchSize = 16 }, Model = new() { Lora = new LoraSpec { Rank = 8, Alpha = 16, Dropout = 0.1, TargetModules = LoraSpec.AdaptableModules } },
    };

    [Fact]
    public void OnlyTheAdapterTrainsCheckpointsHoldOnlyItAndTheSameSpecGivesTheSameBytes()
    {
        using var run = new InProcessRun(Spec(), RepositoryPaths.NewTempFolder("lora-run"), pretrainedCache: RepositoryPaths.PretrainedCache);
        for (int round = 1; round <= 2; round++) run.RunRound();
        string round0 = run.CheckpointFolder(0), round2 = run.CheckpointFolder(2);

        Assert.True(File.Exists(Path.Combine(round0, HfCheckpoint.WeightsFile)));
        Assert.True(PeftAdapter.IsAdapterFolder(round0));
        foreach (var folder in new[] { run.CheckpointFolder(1), round2 })
        {
            Assert.True(PolicyCheckpoint.IsAdapterOnly(folder), $"{folder} should hold the adapter only");
            long adapter = new FileInfo(Path.Combine(folder, PeftAdapter.WeightsFile)).Length;
            long weights = new FileInfo(Path.Combine(round0, HfCheckpoint.WeightsFile)).Length;
            Assert.True(adapter * 3 < weights, $"adapter {adapter} bytes vs base {weights} bytes");
        }
        Assert.All(run.Reports.Skip(1), r => Assert.True(double.IsFinite(r.Metrics["loss"]) && r.Metrics["pairs/kept"] > 0));

        var ids = tensor(new long[] { 1, 60, 62, 61, 10 }).unsqueeze(0);
        using var start = HfCheckpoint.Load(round0);
        using var trained = PolicyCheckpoint.Load(round2, CPU, round0);
        Assert.True((trained.forward(ids) - start.forward(ids)).abs().max().item<float>() > 1e-4f, "the adapter did not train");
        using (trained.AdaptersOff()) // the base under the adapter is round 0's, bit for bit
            Assert.True(trained.forward(ids).equal(start.forward(ids)).all().item<bool>());

        // The same spec again, in another folder: the same adapter bytes after round 1 (dropout masks included).
        using var again = new InProcessRun(Spec(), RepositoryPaths.NewTempFolder("lora-run-again"), pretrainedCache: RepositoryPaths.PretrainedCache);
        again.RunRound();
        Assert.Equal(File.ReadAllBytes(Path.Combine(run.CheckpointFolder(1), PeftAdapter.WeightsFile)),
            File.ReadAllBytes(Path.Combine(again.CheckpointFolder(1), PeftAdapter.WeightsFile)));

        // An adapter offered another base is refused by its recorded hash, naming both.
        string otherBase = RepositoryPaths.Fixture("hf", "llama-tiny");
        var error = Assert.Throws<InvalidDataException>(() => PolicyCheckpoint.Load(round2, CPU, otherBase));
        Assert.Contains("was trained on base weights", error.Message);
    }

    /// <summary>A run starts from a PEFT adapter trained elsewhere: its round 0 is the base with that adapter, computing what it computes.</summary>
    [Fact]
    public void ARunStartsFromAPeftAdapterFolder()
    {
        // A base folder and an adapter for it, as PEFT would have saved them (B drawn, so the adapter changes the model). The
        // base is the built-in model as initialised (what is checked is the adapter's plumbing, not what the base learned).
        string baseFolder = RepositoryPaths.NewTempFolder("peft-base");
        using (var initial = BuiltinModels.Create(BuiltinModels.Tiny, 3)) HfCheckpoint.Save(initial, baseFolder, new ByteTokenizer().HfFiles());
        string adapterFolder = RepositoryPaths.NewTempFolder("peft-adapter");
        var settings = new LoraSpec { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj"] };
        using (var trained = HfCheckpoint.Load(baseFolder))
        {
            using var generator = new Generator(11);
            trained.AddAdapters(settings, generator);
            using (no_grad()) foreach (var (_, layer) in trained.Adapted()) layer.AdapterB.normal_(0, 0.05, generator);
            PeftAdapter.Save(trained, adapterFolder, baseFolder);
        }

        var spec = Spec() with { Model = new() { HfFolder = baseFolder, Lora = new LoraSpec { AdapterFolder = adapterFolder, Rank = 64 /* ignored: the folder's r rules */ } } };
        Assert.Empty(OnlineAlign.Execution.Specs.RunSpecMapping.Problems(spec));
        using var run = new InProcessRun(spec, RepositoryPaths.NewTempFolder("peft-start"), pretrainedCache: RepositoryPaths.PretrainedCache);
        run.Prepare();
        var ids = tensor(new long[] { 1, 60, 62, 61, 10 }).unsqueeze(0);
        using var start = PolicyCheckpoint.Load(run.CheckpointFolder(0), CPU);
        using var imported = PeftAdapter.Load(HfCheckpoint.Load(baseFolder), adapterFolder);
        Assert.Equal(4, start.Lora!.Rank);
        Assert.True(start.forward(ids).equal(imported.forward(ids)).all().item<bool>());
        Assert.Contains(OnlineAlign.Execution.Specs.RunSpecMapping.Problems(spec with { Model = spec.Model with { Lora = new LoraSpec { AdapterFolder = baseFolder } } }),
            p => p.StartsWith("model.lora.adapter_folder", StringComparison.Ordinal) && p.Contains("adapter_config.json"));
    }
}
