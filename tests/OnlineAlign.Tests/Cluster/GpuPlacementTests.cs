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
}
