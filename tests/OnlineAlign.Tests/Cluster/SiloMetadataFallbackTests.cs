using OnlineAlign.Grains.Placement;
using OnlineAlign.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OnlineAlign.Tests.Cluster;

/// <summary>
/// A silo whose Orleans metadata cache has nothing for another silo (Orleans fetched it as the membership changed, the fetch
/// failed, and it does not try again while the membership stays the same) learns that silo's role and device by asking it
/// (SiloMetadataView): a run is placed on the GPU silo and completes instead of waiting as waiting_for_gpu for good.
/// </summary>
[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class SiloMetadataFallbackTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ARunCompletesOnAGpuSiloWhoseMetadataOrleansNeverDelivered()
    {
        // From each silo's start, neither silo reads anything from Orleans' cache.
        await using var cluster = await LocalTestCluster.StartAsync(
            faults => faults.SwitchOn(SiloMetadataView.OrleansCacheEmptyPoint), ("control", null), ("gpu", null));
        await SiloLogTail.OnFailureAsync(cluster, output, async () =>
        {
            // StartAsync waited until each silo counted one GPU silo: the control silo got it by asking the GPU silo.
            var (control, gpu) = (cluster.Silos[0], cluster.Silos[1]);
            await control.WaitForOutputAsync("taken from the silo itself", TimeSpan.FromSeconds(30));   // logged after it counted
            Assert.Contains("hardware.accelerator=gpu", LineWith(control.Output, "taken from the silo itself"));
            var (id, rounds) = await RunProbe.CompletedRunAsync(cluster.Client(0), LocalTestCluster.SmallSpec(rounds: 1), TimeSpan.FromMinutes(5));
            Assert.Equal([1], rounds.Select(r => r.Round));
            Assert.Contains($"run {id} round 1 trained and checkpointed", gpu.Output, StringComparison.Ordinal);
        });
    }

    private static string LineWith(string text, string part) =>
        text.Split('\n').FirstOrDefault(line => line.Contains(part, StringComparison.Ordinal)) ?? "";
}
