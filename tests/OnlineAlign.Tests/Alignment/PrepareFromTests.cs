using OnlineAlign.Alignment.Pairs;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.InProcess;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Alignment;

/// <summary>
/// InProcessRun.PrepareFrom: a control that starts from its arm's round 0 instead of warm-starting again (the learning test's
/// shuffled-score control does) must run exactly the rounds its own warm start would have given it, and must refuse a round 0
/// made from other settings.
/// </summary>
public class PrepareFromTests
{
    private static RunSpec Arm() => new()
    {
        Prompts = new() { Task = "sort", EvalPrompts = 8 }, SftSteps = 30, Rounds = 1, PromptsPerRound = 16, SamplesPerPrompt = 4, Seed = 5,
        Device = "cpu", Sampling = new() { MaxNewTokens = 8 }, Optimizer = new() { BatchSize = 8 },
    };

    private static InProcessRun NewRun(RunSpec spec) =>
        new(spec, RepositoryPaths.NewTempFolder("prepare-from"), pretrainedCache: RepositoryPaths.PretrainedCache);

    private static Dictionary<string, double> WithoutTimes(IReadOnlyDictionary<string, double> metrics) =>
        metrics.Where(kv => !kv.Key.StartsWith("time/", StringComparison.Ordinal)).ToDictionary();

    [Fact]
    public void AControlPreparedFromItsArmsRoundZeroRunsTheRoundItsOwnWarmStartWouldHaveRun()
    {
        var control = Arm() with { PairStrategy = PairBuilder.ShuffledScores };
        using var arm = NewRun(Arm());
        arm.Prepare();
        using var copied = NewRun(control);
        var copiedRound0 = copied.PrepareFrom(arm);
        using var own = NewRun(control);
        var ownRound0 = own.Prepare();

        // The copy is the arm's checkpoint, file for file, and evaluates as the control's own warm start does.
        var files = Directory.GetFiles(arm.CheckpointFolder(0)).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(files, Directory.GetFiles(copied.CheckpointFolder(0)).Select(Path.GetFileName).Order().ToList());
        Assert.All(files, f => Assert.Equal(File.ReadAllBytes(Path.Combine(arm.CheckpointFolder(0), f!)),
            File.ReadAllBytes(Path.Combine(copied.CheckpointFolder(0), f!))));
        Assert.Equal(WithoutTimes(ownRound0.Metrics), WithoutTimes(copiedRound0.Metrics));

        // Its round: the same metrics and the same trained weights, bit for bit.
        var copiedRound1 = copied.RunRound();
        var ownRound1 = own.RunRound();
        Assert.Equal(WithoutTimes(ownRound1.Metrics), WithoutTimes(copiedRound1.Metrics));
        Assert.Equal(File.ReadAllBytes(Path.Combine(own.CheckpointFolder(1), HfCheckpoint.WeightsFile)),
            File.ReadAllBytes(Path.Combine(copied.CheckpointFolder(1), HfCheckpoint.WeightsFile)));
        Assert.True(ownRound1.Metrics["pairs/kept"] > 0); // the round trained: equal weights are not two untouched copies
    }

    [Fact]
    public void PrepareFromRefusesARoundZeroMadeFromOtherSettingsAndARunNotYetPrepared()
    {
        using var arm = NewRun(Arm());
        using var waiting = NewRun(Arm());
        var notPrepared = Assert.Throws<InvalidOperationException>(() => waiting.PrepareFrom(arm));
        Assert.Contains("not prepared", notPrepared.Message);

        arm.Prepare();
        using var otherSeed = NewRun(Arm() with { Seed = 6, SftNoise = 0.1 });
        var refused = Assert.Throws<ArgumentException>(() => otherSeed.PrepareFrom(arm));
        // Each difference named by its spec path, with both values.
        Assert.Contains("seed: 6 here, 5 in the source", refused.Message);
        Assert.Contains("sft_noise", refused.Message);
        Assert.Contains("\"Noise\":0.1", refused.Message);
    }
}
