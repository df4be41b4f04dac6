using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Cluster;

/// <summary>Every per-prompt phase sharded over the GPU silos gives the run one replica gives, bit for bit.</summary>
[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class ShardedRoundTests
{
    private const int GpuSilos = 4;

    [Fact]
    public async Task ARunShardedOverFourGpuSilosEqualsTheSameRunOnOneReplica()
    {
        // Each GPU silo with its own M0 cache (the test suite's silos otherwise share one), to see which silos pretrain M0.
        var m0Caches = Enumerable.Range(0, GpuSilos).Select(_ => RepositoryPaths.NewTempFolder("m0-cache")).ToList();
        await using var cluster = await LocalTestCluster.StartAsync(
            [("control", null), .. m0Caches.Select(folder => ("gpu", (IDictionary<string, string>?)new Dictionary<string, string>
            {
                ["Silo__PretrainedCacheFolder"] = folder,
            }))]);
        var client = cluster.Client(0);
        var shardedSpec = LocalTestCluster.SmallSpec(rounds: 2);
        shardedSpec.GenerationReplicas = 0;   // one replica per GPU silo: 4
        var oneSpec = LocalTestCluster.SmallSpec(rounds: 2);
        oneSpec.GenerationReplicas = 1;
        var sharded = await client.StartRunAsync(new StartRunRequest { Spec = shardedSpec });
        var one = await client.StartRunAsync(new StartRunRequest { Spec = oneSpec });
        await RunProbe.WaitForAsync(client, sharded.Id, r => r.Status == "completed", TimeSpan.FromMinutes(15));
        await RunProbe.WaitForAsync(client, one.Id, r => r.Status == "completed", TimeSpan.FromMinutes(15));

        var shardedList = await client.ListRoundsAsync(new ListRoundsRequest { RunId = sharded.Id });
        var oneList = await client.ListRoundsAsync(new ListRoundsRequest { RunId = one.Id });
        // Round 0 (the initial policy's evaluation, itself sharded): the same checkpoint and metrics.
        Assert.Equal(await RunProbe.WeightsSha256(cluster, oneList.Initial.Checkpoint), await RunProbe.WeightsSha256(cluster, shardedList.Initial.Checkpoint));
        Assert.Equal(RunProbe.ComparableAcrossReplicaCounts(oneList.Initial.Metrics), RunProbe.ComparableAcrossReplicaCounts(shardedList.Initial.Metrics));
        Assert.Equal(2, shardedList.Initial.Metrics["shards/evaluate/count"]);
        var (shardedRounds, oneRounds) = (shardedList.Rounds, oneList.Rounds);
        Assert.Equal(oneRounds.Select(r => r.Round), shardedRounds.Select(r => r.Round));
        Assert.Equal([1, 2], shardedRounds.Select(r => r.Round));
        for (int i = 0; i < oneRounds.Count; i++)
        {
            Assert.Equal(await RunProbe.WeightsSha256(cluster, oneRounds[i].Checkpoint), await RunProbe.WeightsSha256(cluster, shardedRounds[i].Checkpoint));
            // Every metric, but wall times and the shard counts that say how the work was spread.
            Assert.Equal(RunProbe.ComparableAcrossReplicaCounts(oneRounds[i].Metrics), RunProbe.ComparableAcrossReplicaCounts(shardedRounds[i].Metrics));
        }

        // The work was really spread: 48 prompts in 16-prompt generation batches give 3 shards; the judge's 32-row
        // chunks of 4 samples give 6 units over 4 replicas; 32 evaluation prompts in 16-row KL chunks give 2.
        var last = shardedRounds.Single(r => r.Round == 2).Metrics;
        Assert.Equal(3, last["shards/generate/count"]);
        Assert.Equal(GpuSilos, last["shards/judge/count"]);
        Assert.Equal(2, last["shards/evaluate/count"]);
        // How long evaluation's shard 1 waited for the trained checkpoint's upload (0 where it was durable first).
        Assert.True(last["shards/evaluate/checkpoint_wait_seconds"] >= 0);
        Assert.True(last["shards/judge/slowest_seconds"] >= last["shards/judge/mean_seconds"]);
        Assert.DoesNotContain("shards/judge/count", oneRounds.Single(r => r.Round == 2).Metrics.Keys);
        var judgeShardSilos = Enumerable.Range(0, GpuSilos).Select(k =>
            cluster.Silos.FindIndex(s => s.Output.Contains($"run {sharded.Id} round 2 judge shard {k} started"))).ToList();
        Assert.Equal(GpuSilos, judgeShardSilos.Distinct().Count());
        Assert.DoesNotContain(0, judgeShardSilos);   // never on the control silo
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, sharded.Id, rounds: 2, shards: 3);
        // M0 (the self-consistent judge compares with it) is pretrained only where a run was prepared; the judge shards on
        // the other silos read the copy the prepare phase stored with the run.
        for (int k = 0; k < GpuSilos; k++)
            Assert.Equal(cluster.Silos[k + 1].Output.Contains(": M0 stored as checkpoint", StringComparison.Ordinal),
                Directory.EnumerateDirectories(m0Caches[k]).Any());
        Assert.Contains(cluster.Silos, s => s.Output.Contains($"run {sharded.Id}: M0 stored as checkpoint", StringComparison.Ordinal));
        var blobs = await RunProbe.BlobsAsync(cluster, $"runs/{sharded.Id}/round-0002/judge-shard/");
        Assert.Equal(GpuSilos, blobs.Count(b => b.Contains("/shard-")));
    }
}
