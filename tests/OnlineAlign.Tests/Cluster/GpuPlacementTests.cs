using OnlineAlign.Grains.Placement;

namespace OnlineAlign.Tests.Cluster;

public class GpuPlacementTests
{
    [Theory]
    [InlineData("run-1", "run-1", 0)]
    [InlineData("run-1#gen1", "run-1", 1)]
    [InlineData("run#gen#gen12", "run#gen", 12)]
    [InlineData("run#genx", "run#genx", 0)]
    public void ReplicaKeysNameTheirRunAndIndex(string key, string run, int replica) =>
        Assert.Equal((run, replica), OnlineAlign.Grains.Placement.GpuSiloPlacementFilterDirector.RunAndReplica(key));

    [Fact]
    public void ReplicasGoToTheLeastBusySilosOnePerSiloThenWrapAround()
    {
        // (silo, address, other runs on it, free device bytes)
        var silos = new List<(string, string, int, long)> { ("a", "a", 2, 80), ("b", "b", 0, 10), ("c", "c", 0, 70), ("d", "d", 1, 90) };
        Assert.Equal(["c", "b", "d", "a", "c"], GpuSiloChoice.Pick(silos, 5));   // fewest runs, then most free memory
        Assert.Equal(["c"], GpuSiloChoice.Pick(silos, 0));                       // a run has at least its own worker
        Assert.Empty(GpuSiloChoice.Pick(new List<(string, string, int, long)>(), 2));
        // Equal silos are picked in address order, so every orchestrator decides the same way.
        Assert.Equal(["x1", "x2"], GpuSiloChoice.Pick(new List<(string, string, int, long)> { ("x2", "x2", 0, 5), ("x1", "x1", 0, 5) }, 2));
    }

    [Fact]
    public void ReplicasPlacedLaterAvoidTheSilosTheRunAlreadyUses()
    {
        // The worker went to "c" before "b" joined; the generation replica placed later goes to "b", not next to the worker.
        var silos = new List<(string, string, int, long)> { ("b", "b", 0, 10), ("c", "c", 0, 70) };
        Assert.Equal(["b"], GpuSiloChoice.Pick(silos, 1, usedByRun: ["c"]));
        Assert.Equal(["b", "c", "b"], GpuSiloChoice.Pick(silos, 3, usedByRun: ["c"]));   // wraps only once each silo has one
    }

    [Fact]
    public void TheCensusCountsOtherRunsOncePerRunWhateverTheirReplicas()
    {
        var census = new WorkerCensus();
        census.Add("r1");
        census.Add("r1#gen1");
        census.Add("r2#gen2");
        Assert.Equal(2, census.Runs(exceptRun: "none"));
        Assert.Equal(1, census.Runs(exceptRun: "r2"));   // a run's own workers do not count against it
        census.Remove("r1");
        census.Remove("r1#gen1");
        Assert.Equal(0, census.Runs(exceptRun: "r2"));
    }
}
