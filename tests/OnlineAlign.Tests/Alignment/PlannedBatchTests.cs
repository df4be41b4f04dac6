using OnlineAlign.Specs;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Execution.InProcess;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Alignment;

/// <summary>sampling.batch_size 0: the decode batch planned from the device's memory, with the same outputs as any fixed size.</summary>
public class PlannedBatchTests
{
    [Fact]
    public void RowsAreWhatTheBudgetHoldsWithinTheLimit()
    {
        var tiny = BuiltinModels.Tiny; // 4 layers, 2 KV heads of 32: 100 positions x 4 x 2 x 2 x 32 x 4 bytes = 204,800 bytes a row, plus logits
        long perRow = 204_800 + 259 * 4 * 3;
        Assert.Equal(5, MemoryPlan.GenerationRows(tiny, 4, 100, 5 * perRow + perRow / 2, 4096));
        Assert.Equal(1, MemoryPlan.GenerationRows(tiny, 4, 100, 10, 4096));                  // never none
        Assert.Equal(4096, MemoryPlan.GenerationRows(tiny, 4, 100, 1L << 40, 4096));        // never beyond the limit
    }

    [Fact]
    public void APlannedBatchGivesTheSameRoundAsAFixedOne()
    {
        var spec = new RunSpec
        {
            Prompts = new() { Task = "sort", EvalPrompts = 32 }, SftSteps = 60, EftExamples = 200, Rounds = 1, PromptsPerRound = 48, SamplesPerPrompt = 4, Seed = 9, Device = "cpu", Sampling = new() { MaxNewTokens = 8, BatchSize = 16 }
        };
        Dictionary<string, double> Round(RunSpec s)
        {
            using var run = new InProcessRun(s, RepositoryPaths.NewTempFolder("planned-batch"), pretrainedCache: RepositoryPaths.PretrainedCache);
            return run.RunRound().Metrics.Where(kv => !kv.Key.StartsWith("time/", StringComparison.Ordinal)).ToDictionary();
        }
        var fixedBatch = Round(spec);
        var planned = Round(spec with { Sampling = spec.Sampling with { BatchSize = 0 } });
        Assert.Equal(fixedBatch.Keys.Order(), planned.Keys.Order());
        // The same responses, pairs and training; the judge's expected scores only move at float rounding (its batches
        // are padded differently), below anything that changes a ranking here. SPPO's soft target (the default loss) is a
        // smooth function of those scores, so training's figures move at the same relative order (1e-6), no more.
        foreach (var (key, value) in fixedBatch)
            Assert.True(value.Equals(planned[key]) || Math.Abs(value - planned[key]) <= 1e-5 * Math.Max(1, Math.Abs(value)),
                $"{key}: {planned[key]} vs {value}"); // NaN equals NaN
        Assert.Equal(fixedBatch["pairs/kept"], planned["pairs/kept"]);
        Assert.Equal(fixedBatch["generation/length_mean"], planned["generation/length_mean"]);
    }
}
