using OnlineAlign.Silo.Api;
using OnlineAlign.Specs;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runs;
using OnlineAlign.Execution.Retention;
using OnlineAlign.Execution.Specs;

namespace OnlineAlign.Tests.Reliability;

/// <summary>
/// Which checkpoints a run keeps, and that neither retention nor a rollback loses a round's record (in process:
/// the decisions are pure; RetentionClusterTests checks what storage holds after a real run).
/// </summary>
public class RetentionTests
{
    private static RoundRecord Round(int k, double accuracy = 0.5, int epoch = 0) => new()
    {
        Round = k, Epoch = epoch, ManifestPath = $"runs/r/round-{k:D4}/train/e{epoch}/manifest.json", ManifestSha256 = $"sha{k}-{epoch}",
        Metrics = new() { ["eval/accuracy"] = accuracy },
    };

    private static List<RoundRecord> Rounds(int n, int best = -1) =>
        Enumerable.Range(1, n).Select(k => Round(k, k == best ? 0.9 : 0.1 * (k % 3))).ToList();

    [Fact]
    public void KeepLastKeepsTheLastRoundsTheBestRoundZeroAndWhatTheNextRoundReads()
    {
        var spec = new RunSpec { Rounds = 10, Retention = new() { KeepLast = 2 } };
        // Finished: the last 2, the best (round 4) and round 0; nothing else is read again.
        Assert.Equal([0, 4, 9, 10], CheckpointRetention.Kept(spec, Rounds(10, best: 4)));
        Assert.Equal([0, 9, 10], CheckpointRetention.Kept(spec with { Retention = spec.Retention with { KeepBest = false } }, Rounds(10, best: 4)));
        // Still running after round 6: round 7 reads P_6, P_5, P_4 (CREAM's previous judge and its reference), and one
        // more round is kept so that a corrupt round 6 rolls back to round 5 rather than to the start.
        Assert.Equal([0, 3, 4, 5, 6], CheckpointRetention.Kept(spec with { Retention = spec.Retention with { KeepBest = false } }, Rounds(6)));
        // keep_last 0 (the default) keeps everything, and deletes nothing.
        Assert.Equal(Enumerable.Range(0, 11), CheckpointRetention.Kept(new RunSpec { Rounds = 10 }, Rounds(10)));
        Assert.Empty(CheckpointRetention.ToDelete(new RunSpec { Rounds = 10 }, Rounds(10), [Round(3, epoch: 0)], "init"));
        // The best by another metric (higher is better); a round without the metric, or with NaN, is never the best.
        var rounds = Rounds(10);
        rounds[6] = rounds[6] with { Metrics = new() { ["judge/score_mean"] = 7, ["eval/accuracy"] = double.NaN } };
        Assert.Equal(7, CheckpointRetention.Best(spec with { Retention = spec.Retention with { BestMetric = "judge/score_mean" } }, rounds));
        Assert.NotEqual(7, CheckpointRetention.Best(spec, rounds));
    }

    [Fact]
    public void ToDeleteListsOnlyCheckpointsNoKeptRecordOrTheInitialPolicyUses()
    {
        var spec = new RunSpec { Rounds = 10, Retention = new() { KeepLast = 2, KeepBest = false } };
        var rounds = Rounds(10);
        rounds[0] = rounds[0] with { CheckpointDeleted = true };         // deleted at an earlier commit
        rounds[1] = rounds[1] with { ManifestPath = rounds[9].ManifestPath }; // (a shared checkpoint) kept through round 10
        var superseded = new List<RoundRecord> { Round(0) with { ManifestPath = "init" }, Round(9, epoch: 0) with { ManifestPath = "old9" } };
        var doomed = CheckpointRetention.ToDelete(spec, rounds, superseded, "init").Select(r => r.ManifestPath).ToList();
        Assert.Equal(rounds.Skip(2).Take(6).Select(r => r.ManifestPath).Append("old9"), doomed);
    }

    [Fact]
    public void MarkingForRetentionKeepsEveryRecordAndQueuesTheCheckpointsToDelete()
    {
        var state = new RunState { Spec = new RunSpec { Rounds = 10, Retention = new() { KeepLast = 2, KeepBest = false } }, Rounds = Rounds(10), Initial = new BlobRef { Path = "init" } };
        Assert.Equal(8, RoundHistory.MarkForRetention(state));
        Assert.Equal(Enumerable.Range(1, 10), state.Rounds.Select(r => r.Round)); // every record stays, metrics included
        Assert.Equal(Enumerable.Range(1, 8), state.Rounds.Where(r => r.CheckpointDeleted).Select(r => r.Round));
        Assert.All(state.Rounds, r => Assert.True(r.Metrics.ContainsKey("eval/accuracy")));
        Assert.Equal(state.Rounds.Take(8).Select(r => r.ManifestPath), state.PendingDeletes);
        Assert.Equal(0, RoundHistory.MarkForRetention(state)); // nothing more to mark until another round commits
        // ListRounds shows the flag.
        Assert.True(SpecConversion.ToProto(state.Rounds[0]).CheckpointDeleted);
        Assert.False(SpecConversion.ToProto(state.Rounds[9]).CheckpointDeleted);
    }

    [Fact]
    public void ARollbackSupersedesTheDiscardedRoundsInsteadOfDroppingThem()
    {
        var state = new RunState { Spec = new RunSpec { Rounds = 6 }, Rounds = Rounds(5), Initial = new BlobRef { Path = "init" }, Baseline = Round(0), Epoch = 0 };
        RoundHistory.RollBack(state, corrupt: 4, "blob 'runs/r/round-0004/train/x/model.safetensors' is corrupt");
        Assert.Equal([1, 2, 3], state.Rounds.Select(r => r.Round));
        Assert.Equal(1, state.Epoch);
        Assert.Equal([4, 5], state.Superseded.Select(r => r.Round));
        Assert.All(state.Superseded, r => Assert.Equal(1, r.SupersededByEpoch));
        Assert.Contains("round 4 was discarded", state.Error);
        var wire = SpecConversion.ToProto(state.Superseded[0]);
        Assert.True(wire.Superseded);
        Assert.Equal(1, wire.SupersededByEpoch);
        Assert.Equal(0, wire.Epoch);
        Assert.Equal(0.1 * (4 % 3), wire.Metrics["eval/accuracy"], 12); // the metrics stay reachable

        // Round 4 is redone in epoch 1, then round 2's checkpoint turns out corrupt: round 4 of epoch 1 is superseded too.
        state.Rounds.Add(Round(4, epoch: 1));
        RoundHistory.RollBack(state, corrupt: 2, "blob 'runs/r/round-0002/train/x/model.safetensors' is corrupt");
        Assert.Equal([1], state.Rounds.Select(r => r.Round));
        Assert.Equal([(4, 0, 1), (5, 0, 1), (2, 0, 2), (3, 0, 2), (4, 1, 2)],
            state.Superseded.Select(r => (r.Round, r.Epoch, r.SupersededByEpoch!.Value)));

        // A corrupt initial policy: round 0 is prepared again, and the old baseline is superseded with the rest.
        RoundHistory.RollBack(state, corrupt: 0, "blob 'runs/r/round-0000/prepare/x/model.safetensors' is corrupt");
        Assert.Empty(state.Rounds);
        Assert.Null(state.Initial);
        Assert.Null(state.Baseline);
        Assert.Contains(state.Superseded, r => r.Round == 0 && r.SupersededByEpoch == 3);
        Assert.Contains(state.Superseded, r => r.Round == 1 && r.SupersededByEpoch == 3);
    }

    [Fact]
    public void ARollbackGoesBackPastRoundsWhoseNeededCheckpointsRetentionDeleted()
    {
        var rounds = Rounds(8).Select(r => r.Round <= 3 ? r with { CheckpointDeleted = true } : r).ToList();
        // Round 8 corrupt: round 7 can go on (it reads 7, 6, 5: all there).
        Assert.Equal(7, CheckpointRetention.RollbackTarget(rounds, 8));
        // Round 6 corrupt: round 5 would read 5, 4 and 3 (deleted), round 4 reads 3 and 2: back to round 0.
        Assert.Equal(0, CheckpointRetention.RollbackTarget(rounds, 6));
        var state = new RunState { Spec = new RunSpec { Rounds = 8 }, Rounds = rounds, Initial = new BlobRef { Path = "init" } };
        RoundHistory.RollBack(state, 6, "blob 'runs/r/round-0006/train/x/model.safetensors' is corrupt");
        Assert.Empty(state.Rounds);
        Assert.NotNull(state.Initial); // round 0 is always kept: the run goes on from it
        Assert.Equal(8, state.Superseded.Count);
        Assert.Contains("rounds 1 to 5 are redone too", state.Error);
    }
}
