using OnlineAlign.Contracts;
using OnlineAlign.Pipeline.Local;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Alignment;

/// <summary>Learning tests: whole runs in one process through the cluster's own phase functions (LocalRun).</summary>
public class OnlineAlignmentTests
{
    [Fact]
    public void VerifierJudgedRoundsRaiseHeldOutAccuracyOverRoundZero()
    {
        var spec = new RunSpec
        {
            Task = "sort", SftSteps = 150, SftNoise = 0.3, Rounds = 3, PromptsPerRound = 512, SamplesPerPrompt = 8, EvalPrompts = 100,
            Judge = "verifier", Consistency = "none", Loss = "dpo", Beta = 0.1, LearningRate = 3e-5, BatchSize = 16, Seed = 1, Device = "cpu",
        };
        using var run = new LocalRun(spec, RepositoryPaths.NewTempFolder("local-run"));
        double before = run.Prepare().Metrics["eval/accuracy"];
        Assert.InRange(before, 0.3, 0.9); // the warm start is clearly imperfect
        for (int round = 1; round <= spec.Rounds; round++) run.RunRound();
        double after = run.Reports[^1].Metrics["eval/accuracy"];
        Assert.True(after > before, $"held-out accuracy {before:P1} at round 0, {after:P1} after {spec.Rounds} rounds");
        Assert.All(run.Reports.Skip(1), r => Assert.True(r.Metrics["pairs/kept"] > 0));
    }
}
