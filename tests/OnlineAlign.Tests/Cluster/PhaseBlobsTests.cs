using OnlineAlign.Specs;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runs;
using OnlineAlign.Grains.Workers;

namespace OnlineAlign.Tests.Cluster;

public class PhaseBlobsTests
{
    [Fact]
    public void PhaseOutputsReadBackBitForBitIncludingNaN()
    {
        // Values whose shortest decimal form is long, and the NaN a round-1 consistency tau is.
        var judged = new JudgeOutcome([[0.1 + 0.2, -1e-300, double.NaN], [Math.PI, 1.0 / 3, double.Epsilon]], [1.0, 0.7071067811865476],
            new() { ["consistency/tau"] = double.NaN, ["judge/score_mean"] = 2.0 / 3 });
        var back = PhaseBlobs.Judged(PhaseBlobs.Bytes(judged));
        for (int i = 0; i < judged.Scores.Length; i++)
            Assert.Equal(judged.Scores[i].Select(BitConverter.DoubleToInt64Bits), back.Scores[i].Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(judged.Consistency, back.Consistency);
        Assert.True(double.IsNaN(back.Metrics["consistency/tau"]));

        var pairs = new PairsOutcome([new PairExample([1, 5], [6, 2], [7, 2], -3.0000000000000004, -2.9999999999999996, 0.123456789012345678)], new() { ["pairs/kept"] = 1 });
        var pairsBack = PhaseBlobs.Pairs(PhaseBlobs.Bytes(pairs));
        Assert.Equal(pairs.Examples[0].Prompt, pairsBack.Examples[0].Prompt);
        Assert.Equal(pairs.Examples[0].Rejected, pairsBack.Examples[0].Rejected);
        Assert.Equal(BitConverter.DoubleToInt64Bits(pairs.Examples[0].ReferenceChosen), BitConverter.DoubleToInt64Bits(pairsBack.Examples[0].ReferenceChosen));
        Assert.Equal(pairs.Examples[0].Consistency, pairsBack.Examples[0].Consistency);
    }

    [Fact]
    public void APhaseKeyDependsOnEveryInputAndOnlyOnThem()
    {
        var request = new PhaseRequest { RunId = "r", Round = 2, Policy = new BlobRef { Path = "p", Sha256 = "aa" } };
        Assert.Equal(PhaseBlobs.Key("judge", request), PhaseBlobs.Key("judge", request with { }));
        Assert.NotEqual(PhaseBlobs.Key("judge", request), PhaseBlobs.Key("pairs", request));
        Assert.NotEqual(PhaseBlobs.Key("judge", request), PhaseBlobs.Key("judge", request with { Policy = new BlobRef { Path = "p", Sha256 = "ab" } }));
        Assert.NotEqual(PhaseBlobs.Key("judge", request), PhaseBlobs.Key("judge", request with { Epoch = 1 }));
        Assert.NotEqual(PhaseBlobs.Key("judge", request), PhaseBlobs.Key("judge", request with { Spec = new RunSpec { Loss = new() { Beta = 0.2 } } }));
    }

    [Fact]
    public void ACommittedRoundSplitsItsTimeAndNamesEveryPhaseOutput()
    {
        PhaseOutput Out(string path, params (string, double)[] metrics) =>
            new() { Output = new BlobRef { Path = path, Sha256 = "x" }, Metrics = metrics.ToDictionary(m => m.Item1, m => m.Item2) };
        var progress = new RoundProgress
        {
            Round = 1, Seconds = 10,
            Generations = [Out("g0", ("time/generate", 3), ("time/storage", 0.1)), Out("g1", ("time/generate", 2), ("time/storage", 0.2))],
            Judged = Out("j", ("time/judge", 1), ("time/storage", 0.1), ("judge/score_mean", 0.5)),
            Pairs = Out("p", ("time/pairs", 0.5), ("time/storage", 0.1)),
            Trained = Out("t", ("time/train", 2), ("time/checkpoint", 0.5), ("time/storage", 0.1), ("loss", 0.6)),
            Evaluated = Out("e", ("time/evaluate", 1), ("time/storage", 0.1)),
        };
        var record = RoundCommit.Record(progress, []);
        Assert.Equal(3, record.Metrics["time/generate"]); // parallel shards: the slowest
        Assert.Equal(0.2 + 0.4, record.Metrics["time/storage"], 12);
        Assert.Equal(10 - (3 + 1 + 0.5 + 2 + 0.5 + 1 + 0.6), record.Metrics["time/orchestration"], 12);
        Assert.Equal(0.6, record.Metrics["loss"]);
        Assert.Equal("t", record.ManifestPath);
        Assert.Equal(["generate/shard-0", "generate/shard-1", "judge", "pairs", "train", "evaluate"], record.Outputs.Keys);
    }
}
