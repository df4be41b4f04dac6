using OnlineAlign.Specs;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.InProcess;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Alignment;

/// <summary>
/// The trained model kept in memory (Silo:KeepTrainedModel, on by default): the evaluate phase and the next round use it
/// under its checkpoint's hash instead of reading the checkpoint back, and the run is bit-identical to one that reads back.
/// </summary>
public class KeepTrainedModelTests
{
    [Fact]
    public void RoundsUseTheTrainedModelWithoutReadingItsCheckpointBackAndTrainTheSameWeights() =>
        KeptEqualsReadBack(new RunSpec
        {
            Prompts = new() { Task = "sort", EvalPrompts = 8 }, SftSteps = 30, Rounds = 2, PromptsPerRound = 16, SamplesPerPrompt = 4, Seed = 5,
            Device = "cpu", Sampling = new() { MaxNewTokens = 8 }, Optimizer = new() { CarryState = true, BatchSize = 8 },
        }, HfCheckpoint.WeightsFile);

    /// <summary>A LoRA run: the adapter trained and its carried moments kept in memory (the base shared), bit-identical to reading them back.</summary>
    [Fact]
    public void ALoraRunKeepsItsTrainedAdapterAndMomentsAndTrainsTheSameAdapters() =>
        KeptEqualsReadBack(new RunSpec
        {
            Prompts = new() { Task = "sort", EvalPrompts = 8 }, SftSteps = 30, Rounds = 2, PromptsPerRound = 16, SamplesPerPrompt = 4, Seed = 5,
            Device = "cpu", Sampling = new() { MaxNewTokens = 8 }, Optimizer = new() { CarryState = true, BatchSize = 8, LearningRate = 1e-3 },
            Model = new ModelSpec { Lora = new LoraSpec { Rank = 8, Alpha = 16, TargetModules = ["q_proj", "v_proj", "down_proj"] } },
        }, PeftAdapter.WeightsFile);

    private static void KeptEqualsReadBack(RunSpec spec, string weightsFile)
    {
        var kept = Run(spec, keep: true, weightsFile);
        var readBack = Run(spec, keep: false, weightsFile);

        // Kept: no round's checkpoint (round 1's: evaluated, then generated from, judged with and trained on in round 2) was
        // read from its folder, nor its AdamW moments from their file; only the initial policy was. Read back: each of them was.
        Assert.Contains(kept.Keys[0], kept.Loads);
        for (int r = 1; r <= spec.Rounds; r++)
        {
            Assert.DoesNotContain(kept.Keys[r], kept.Loads);
            Assert.Contains(readBack.Keys[r], readBack.Loads);
        }
        // Round 2 trains from round 1's checkpoint: its moments came from memory, or from the file.
        Assert.DoesNotContain(kept.Keys[1], kept.OptimizerLoads);
        Assert.Contains(readBack.Keys[1], readBack.OptimizerLoads);
        // Bit for bit the same weights and AdamW moments each round, and the same metrics (all but times).
        for (int r = 0; r < spec.Rounds; r++)
        {
            Assert.Equal(readBack.Files[r], kept.Files[r]);
            Assert.Equal(readBack.Metrics[r], kept.Metrics[r]);
        }
    }

    private static (List<string> Keys, List<string> Loads, List<string> OptimizerLoads, List<byte[][]> Files, List<Dictionary<string, double>> Metrics)
        Run(RunSpec spec, bool keep, string weightsFile)
    {
        // M0 (the warm start's pretrained model) built once for all four runs: the same seed gives the same weights.
        using var run = new InProcessRun(spec, RepositoryPaths.NewTempFolder("keep-trained"), pretrainedCache: RepositoryPaths.PretrainedCache)
        {
            KeepTrainedModel = keep,
        };
        var metrics = Enumerable.Range(0, spec.Rounds)
            .Select(_ => run.RunRound().Metrics.Where(kv => !kv.Key.StartsWith("time/", StringComparison.Ordinal)).ToDictionary()).ToList();
        var files = Enumerable.Range(1, spec.Rounds).Select(r => new[] { weightsFile, OptimizerState.FileName }
            .Select(name => File.ReadAllBytes(Path.Combine(run.CheckpointFolder(r), name))).ToArray()).ToList();
        return (Enumerable.Range(0, spec.Rounds + 1).Select(run.CheckpointKey).ToList(), run.CheckpointLoads.ToList(), run.OptimizerLoads.ToList(),
            files, metrics);
    }
}
