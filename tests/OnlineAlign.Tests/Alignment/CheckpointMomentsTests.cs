using System.Text.Json.Nodes;
using OnlineAlign.Execution.InProcess;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Contracts;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Alignment;

/// <summary>
/// A checkpoint holds AdamW's moments only where the next round starts from them (optimizer.carry_state): a fresh optimiser
/// every round (the default) has nothing to resume, and its moments would be 80% of a full fine-tuning checkpoint's bytes.
/// </summary>
public class CheckpointMomentsTests
{
    [Fact]
    public void MomentsAreWrittenOnlyWhenCarriedAndLeavingThemOutChangesNoWeight()
    {
        var (fresh, freshState) = RoundOne(carry: false);
        var (carried, carriedState) = RoundOne(carry: true);

        Assert.False(File.Exists(Path.Combine(fresh, OptimizerState.FileName)));
        Assert.Contains("fresh AdamW every round", freshState);
        using (var moments = OptimizerState.Load(Path.Combine(carried, OptimizerState.FileName)))
            Assert.False(moments.IsEmpty);
        Assert.Contains("carried into the next round", carriedState);
        // Round 1 starts from a fresh optimiser either way: the same update, so the same weights, byte for byte.
        Assert.Equal(File.ReadAllBytes(Path.Combine(carried, HfCheckpoint.WeightsFile)), File.ReadAllBytes(Path.Combine(fresh, HfCheckpoint.WeightsFile)));
    }

    private static (string Folder, string OptimizerState) RoundOne(bool carry)
    {
        var spec = new RunSpec
        {
            Prompts = new() { Task = "sort", EvalPrompts = 8 }, SftSteps = 30, Rounds = 1, PromptsPerRound = 16, SamplesPerPrompt = 4, Seed = 5,
            Device = "cpu", Sampling = new() { MaxNewTokens = 8 }, Optimizer = new() { CarryState = carry, BatchSize = 8 },
        };
        var run = new InProcessRun(spec, RepositoryPaths.NewTempFolder("moments"), pretrainedCache: RepositoryPaths.PretrainedCache);
        using (run)
        {
            run.RunRound();
            string folder = run.CheckpointFolder(1);
            var state = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "onlinealign_state.json")))!["optimizer"]!.GetValue<string>();
            return (folder, state);
        }
    }
}
