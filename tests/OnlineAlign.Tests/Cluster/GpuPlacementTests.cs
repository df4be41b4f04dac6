using OnlineAlign.Contracts;
using OnlineAlign.Grains.Placement;
using OnlineAlign.Grains.Runs;

namespace OnlineAlign.Tests.Cluster;

public class GpuPlacementTests
{
    private const long Gib = 1L << 30;

    [Theory]
    [InlineData("run-1", "run-1", 0)]
    [InlineData("run-1#gen1", "run-1", 1)]
    [InlineData("run#gen#gen12", "run#gen", 12)]
    [InlineData("run#genx", "run#genx", 0)]
    public void ReplicaKeysNameTheirRunAndIndex(string key, string run, int replica) =>
        Assert.Equal((run, replica), GpuSiloPlacementFilterDirector.RunAndReplica(key));

    private static Dictionary<string, RunPlacement> Ledger(params (string Run, long Bytes, string[] Silos)[] runs) =>
        runs.ToDictionary(r => r.Run, r => new RunPlacement { Silos = [.. r.Silos], PlanBytes = r.Bytes });

    private static List<string> Placed(GpuPlacementDecision decision) => Assert.IsType<RunPlacement>(decision.Placement).Silos;

    [Fact]
    public void OnlySilosTheRunsSiloListsArePlacedOn()
    {
        // The ledger sees a, b and c; the run's silo (which activates the replicas) has not learnt b's metadata yet.
        var known = new List<GpuSilo> { new("a", 16 * Gib), new("b", 24 * Gib), new("c", 8 * Gib) };
        var silos = GpuPlacement.Within(known, ["c", "a", "z"]);
        Assert.Equal(["a", "c"], silos.Select(s => s.Address));
        // Every silo it lists, b (the most memory) left out; one replica goes to a, not b.
        Assert.Equal(["a", "c"], Placed(GpuPlacement.Decide(silos, Ledger(), "new", 4 * Gib, 0)));
        Assert.Equal(["a"], Placed(GpuPlacement.Decide(silos, Ledger(), "new", 4 * Gib, 1)));
        // A replica already on b moves to a silo the run's silo lists.
        Assert.DoesNotContain("b", Placed(GpuPlacement.Decide(silos, Ledger(("new", 4 * Gib, ["b", "a"])), "new", 4 * Gib, 2)));
        // Listing none: the run waits.
        Assert.Null(GpuPlacement.Decide(GpuPlacement.Within(known, []), Ledger(), "new", 4 * Gib, 0).Placement);
    }

    [Fact]
    public void TheSiloWithTheMostMemoryLeftAfterThePlacedPlansWins()
    {
        // b has the larger device, but the run placed there leaves it less than a.
        var silos = new List<GpuSilo> { new("a", 16 * Gib), new("b", 24 * Gib), new("c", 8 * Gib) };
        var ledger = Ledger(("other", 12 * Gib, ["b"]));
        Assert.Equal(["a"], Placed(GpuPlacement.Decide(silos, ledger, "new", 4 * Gib, 1)));
        // Without that run, b wins.
        Assert.Equal(["b"], Placed(GpuPlacement.Decide(silos, Ledger(), "new", 4 * Gib, 1)));
        // Replicas spread one per silo before any silo gets a second, in order of memory left: b (24), a (16), c (8), then b again.
        Assert.Equal(["b", "a", "c", "b"], Placed(GpuPlacement.Decide(silos, Ledger(), "new", 4 * Gib, 4)));
    }

    [Fact]
    public void TiesGoToTheFirstAddressWhateverTheOrderSilosAreListedIn()
    {
        var listed = new List<GpuSilo> { new("S10.0.0.3:11111@3", 8 * Gib), new("S10.0.0.1:11111@1", 8 * Gib), new("S10.0.0.2:11111@2", 8 * Gib) };
        var reversed = Enumerable.Reverse(listed).ToList();
        Assert.Equal(["S10.0.0.1:11111@1"], Placed(GpuPlacement.Decide(listed, Ledger(), "r", Gib, 1)));
        Assert.Equal(["S10.0.0.1:11111@1"], Placed(GpuPlacement.Decide(reversed, Ledger(), "r", Gib, 1)));
        // The next run, same plan: the first silo now has less left, so the second address wins.
        var ledger = Ledger(("r", Gib, ["S10.0.0.1:11111@1"]));
        Assert.Equal(["S10.0.0.2:11111@2"], Placed(GpuPlacement.Decide(reversed, ledger, "s", Gib, 1)));
    }

    [Fact]
    public void ASiloWhoseMemoryIsNotKnownYetIsNeverPicked()
    {
        // "new" joined the cluster with more memory than anyone, but its metadata has not arrived.
        var silos = new List<GpuSilo> { new("new", null), new("old", 8 * Gib) };
        Assert.Equal(["old"], Placed(GpuPlacement.Decide(silos, Ledger(), "r", Gib, 1)));
        Assert.Equal(["old"], Placed(GpuPlacement.Decide(silos, Ledger(), "r", Gib, 0)));   // 0: every silo it fits on, known ones only
        var none = GpuPlacement.Decide([new("new", null)], Ledger(), "r", Gib, 1);
        Assert.Null(none.Placement);
        Assert.Contains("no GPU silo with a known device memory", none.Wait);
    }

    [Fact]
    public void APlanThatFitsNowhereWaitsWithAReasonNamingEachSilosMemoryLeft()
    {
        var silos = new List<GpuSilo> { new("a", 8 * Gib), new("b", 8 * Gib) };
        var ledger = Ledger(("one", 6 * Gib, ["a"]), ("two", 5 * Gib, ["b"]));
        var decision = GpuPlacement.Decide(silos, ledger, "three", 4 * Gib, 1);
        Assert.Null(decision.Placement);
        Assert.Contains("4.00 GiB per replica", decision.Wait);
        Assert.Contains("a has 2.00 GiB of 8.00 GiB left", decision.Wait);
        Assert.Contains("b has 3.00 GiB of 8.00 GiB left", decision.Wait);
        // Run "one" released (completed): the waiting run fits on a.
        ledger.Remove("one");
        Assert.Equal(["a"], Placed(GpuPlacement.Decide(silos, ledger, "three", 4 * Gib, 1)));
    }

    [Fact]
    public void AnExplicitCountMustFitWholeWhileZeroTakesEverySiloItFitsOn()
    {
        var silos = new List<GpuSilo> { new("a", 8 * Gib), new("b", 8 * Gib), new("c", 8 * Gib) };
        var ledger = Ledger(("big", 7 * Gib, ["c"]));
        Assert.Null(GpuPlacement.Decide(silos, ledger, "r", 4 * Gib, 5).Placement);   // a and b hold two each, c none
        Assert.Equal(["a", "b", "a", "b"], Placed(GpuPlacement.Decide(silos, ledger, "r", 4 * Gib, 4)));
        Assert.Equal(["a", "b"], Placed(GpuPlacement.Decide(silos, ledger, "r", 4 * Gib, 0)));
        Assert.Equal(["a", "b", "c"], Placed(GpuPlacement.Decide(silos, Ledger(), "r", 4 * Gib, 0)));
    }

    [Fact]
    public void ARunKeepsTheSilosOfItsLiveReplicasAndOnlyTheDeadOnesMove()
    {
        var silos = new List<GpuSilo> { new("a", 8 * Gib), new("c", 8 * Gib), new("d", 16 * Gib) };
        // Replica 0 on c (d has more room now, but the worker's models are on c); replica 1's silo b is gone.
        var ledger = Ledger(("r", 2 * Gib, ["c", "b"]), ("other", 2 * Gib, ["a"]));
        Assert.Equal(["c", "d"], Placed(GpuPlacement.Decide(silos, ledger, "r", 2 * Gib, 2)));
        // The same ledger gives the same answer (deterministic), and another run sees r's replicas as taken memory.
        Assert.Equal(["c", "d"], Placed(GpuPlacement.Decide(silos, ledger, "r", 2 * Gib, 2)));
        Assert.Equal(["d"], Placed(GpuPlacement.Decide(silos, Ledger(("r", 2 * Gib, ["c", "d"]), ("other", 2 * Gib, ["a"])), "s", 8 * Gib, 1)));
    }

    [Fact]
    public void WithZeroADeadSilosReplicaIsLeftOutInsteadOfSharingALiveSilo()
    {
        // Replica 1's silo b is gone: one replica per GPU silo present, the live ones where they were.
        Assert.Equal(["c"], Placed(GpuPlacement.Decide([new("c", 8 * Gib)], Ledger(("r", 2 * Gib, ["c", "b"])), "r", 2 * Gib, 0)));
        // Replica 0's silo gone: the live replica's silo becomes replica 0's (the run's worker), and a silo without one of the
        // run's replicas still takes one.
        var silos = new List<GpuSilo> { new("a", 8 * Gib), new("c", 8 * Gib) };
        Assert.Equal(["c", "a"], Placed(GpuPlacement.Decide(silos, Ledger(("r", 2 * Gib, ["b", "c"])), "r", 2 * Gib, 0)));
        // An explicit count is kept: the lost replica goes where there is room, beside another if it must.
        Assert.Equal(["c", "c"], Placed(GpuPlacement.Decide([new("c", 8 * Gib)], Ledger(("r", 2 * Gib, ["c", "b"])), "r", 2 * Gib, 2)));
        // ... and the next round, back to 0, runs one replica there (the round resumed with its count after the death had
        // stacked them); one that can move to a silo free of the run does.
        Assert.Equal(["c"], Placed(GpuPlacement.Decide([new("c", 8 * Gib)], Ledger(("r", 2 * Gib, ["c", "c"])), "r", 2 * Gib, 0)));
        Assert.Equal(["c", "a"], Placed(GpuPlacement.Decide(silos, Ledger(("r", 2 * Gib, ["c", "c"])), "r", 2 * Gib, 0)));
    }

    [Fact]
    public void StackedReplicasMoveToASiloWithRoomThatHoldsNoneOfTheRunsOnceItIsKnown()
    {
        // Both replicas went to a while b's metadata was on its way (an explicit count of 2).
        var early = new List<GpuSilo> { new("a", 8 * Gib), new("b", null) };
        Assert.Equal(["a", "a"], Placed(GpuPlacement.Decide(early, Ledger(), "r", 2 * Gib, 2)));
        var ledger = Ledger(("r", 2 * Gib, ["a", "a"]));
        // b known: replica 1 moves there, replica 0 (the run's own worker) stays; the answer is stable once placed so.
        var known = new List<GpuSilo> { new("a", 8 * Gib), new("b", 8 * Gib) };
        Assert.Equal(["a", "b"], Placed(GpuPlacement.Decide(known, ledger, "r", 2 * Gib, 2)));
        Assert.Equal(["a", "b"], Placed(GpuPlacement.Decide(known, Ledger(("r", 2 * Gib, ["a", "b"])), "r", 2 * Gib, 2)));
        // The last stacked replicas move first, each to an empty silo with room (most memory left first); 0 keeps the count.
        var three = new List<GpuSilo> { new("a", 8 * Gib), new("b", 8 * Gib), new("c", 16 * Gib) };
        Assert.Equal(["a", "b", "c"], Placed(GpuPlacement.Decide(three, Ledger(("r", 2 * Gib, ["a", "a", "a"])), "r", 2 * Gib, 3)));
        Assert.Equal(["a", "c", "b"], Placed(GpuPlacement.Decide(three, Ledger(("r", 2 * Gib, ["a", "a", "b"])), "r", 2 * Gib, 3)));
        Assert.Equal(["a", "c", "b"], Placed(GpuPlacement.Decide(three, Ledger(("r", 2 * Gib, ["a", "a", "b"])), "r", 2 * Gib, 0)));
    }

    [Fact]
    public void StackedReplicasStayWhenNoSiloWithRoomIsFreeOfTheRun()
    {
        var silos = new List<GpuSilo> { new("a", 8 * Gib), new("b", 8 * Gib) };
        // b is full with another run's plan: replica 1 stays beside replica 0.
        Assert.Equal(["a", "a"], Placed(GpuPlacement.Decide(silos, Ledger(("r", 2 * Gib, ["a", "a"]), ("big", 7 * Gib, ["b"])), "r", 2 * Gib, 2)));
        // More replicas than silos: every silo holds one already, so nothing moves.
        Assert.Equal(["a", "b", "a"], Placed(GpuPlacement.Decide(silos, Ledger(("r", 2 * Gib, ["a", "b", "a"])), "r", 2 * Gib, 3)));
    }

    [Fact]
    public void PlacementHintsNameEachReplicasSiloByGrainKey()
    {
        string hint = GpuSiloPlacementFilterDirector.Hint("run-1", ["S1", "S2", "S1"]);
        var context = new Dictionary<string, object> { [GpuSiloPlacementFilterDirector.HintKey] = hint };
        Assert.Equal("S1", GpuSiloPlacementFilterDirector.Hinted(context, "run-1"));
        Assert.Equal("S2", GpuSiloPlacementFilterDirector.Hinted(context, "run-1#gen1"));
        Assert.Equal("S1", GpuSiloPlacementFilterDirector.Hinted(context, "run-1#gen2"));
        Assert.Null(GpuSiloPlacementFilterDirector.Hinted(context, "run-1#gen3"));
        Assert.Null(GpuSiloPlacementFilterDirector.Hinted(context, "run-2"));
        Assert.Null(GpuSiloPlacementFilterDirector.Hinted(null, "run-1"));
    }

    [Fact]
    public void WaitingForMemoryParksTheRunAsWaitingForGpu() =>
        Assert.Equal(FailureKind.NoGpuSilo, FailureClassifier.Classify(new WaitingForGpuException("no room")));

    [Fact]
    public void ThroughputIsTokensOverComputeTimePerShardAveragedAndStragglersAreARatio()
    {
        var shards = new List<Dictionary<string, double>>
        {
            new() { ["shards/judge/tokens"] = 300, ["time/judge-shard"] = 3 },
            new() { ["shards/judge/tokens"] = 100, ["time/judge-shard"] = 1 },
        };
        var metrics = ShardMetrics.WithThroughput(ShardMetrics.Combine("judge", new Dictionary<string, double>(), shards), "judge", shards, "time/judge-shard");
        Assert.Equal(400, metrics["shards/judge/tokens"]);
        Assert.Equal(100, metrics["shards/judge/tokens_per_second"]);
        Assert.Equal(1.5, metrics["shards/judge/slowest_over_mean"]);   // 3 s against a 2 s mean
        // Phases that count no tokens get no throughput.
        Assert.DoesNotContain("shards/pairs/tokens_per_second", ShardMetrics.WithThroughput(metrics, "pairs", shards, "time/pairs-shard").Keys);
    }
}
