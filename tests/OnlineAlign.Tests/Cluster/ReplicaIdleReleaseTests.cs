using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Cluster;

/// <summary>
/// Silo:ReplicaIdleSeconds: a run's extra replica left idle lets its models go (its activation ends), and the next phase
/// it is given loads them again, with results equal to a run whose only replica never let anything go.
/// </summary>
[Collection("processes")]
[Trait("Kind", "Cluster")]
public class ReplicaIdleReleaseTests
{
    [Fact]
    public async Task AnIdleReplicaLetsItsModelsGoAndLoadsThemAgainForItsNextShardWithTheSameResult()
    {
        // A short idle time; the test holds the run while the replica has nothing to do instead of racing the clock.
        var idle = new Dictionary<string, string> { ["Silo__ReplicaIdleSeconds"] = "0.2" };
        await using var cluster = await LocalTestCluster.StartAsync(("control", idle), ("gpu", idle), ("gpu", idle));
        var client = cluster.Client(0);
        // Round 1's training runs on the run's own worker (replica 0) alone: held there, replica 1 sits idle.
        const string held = "train/round-1/start";
        cluster.Faults.Hold(held);
        var twoSpec = LocalTestCluster.SmallSpec(rounds: 2);
        twoSpec.GenerationReplicas = 2;
        var oneSpec = LocalTestCluster.SmallSpec(rounds: 2);
        oneSpec.GenerationReplicas = 1;
        var two = await client.StartRunAsync(new StartRunRequest { Spec = twoSpec });
        var one = await client.StartRunAsync(new StartRunRequest { Spec = oneSpec });
        await cluster.Faults.WaitUntilReachedAsync(held, TimeSpan.FromMinutes(6));
        string replica = $"{two.Id}#gen1";
        // Both runs stop at the same fault point: the first to reach it may be the one-replica run, so wait for the
        // two-replica run's replica 1 to have judged (its silo's log, which arrives queued) before looking for it.
        var silo = await SiloThatLogsAsync(cluster, $"run {two.Id} round 1 judge shard 1 started", TimeSpan.FromMinutes(6));
        // Round 1's shards of replica 1 are done (pairs came before train): it lets its models go while the run is held.
        await silo.WaitForOutputAsync($"replica {replica} idle for 0.2 s: it lets its models go", TimeSpan.FromMinutes(2));
        int releasedAt = silo.Output.LastIndexOf($"replica {replica} idle for", StringComparison.Ordinal);
        cluster.Faults.Release(held);

        await RunProbe.WaitForAsync(client, two.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));
        await RunProbe.WaitForAsync(client, one.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));
        // After the release, replica 1 (a new activation on the same silo, loading its models again) ran round 1's evaluation
        // shard and round 2's shards.
        await silo.WaitForOutputAsync($"run {two.Id} round 2 judge shard 1 started", TimeSpan.FromMinutes(1));
        string after = silo.Output[releasedAt..];
        Assert.Contains($"run {two.Id} round 1 evaluate shard 1 started", after, StringComparison.Ordinal);
        Assert.Contains($"run {two.Id} round 2 judge shard 1 started", after, StringComparison.Ordinal);

        var (twoList, oneList) = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = two.Id }),
            await client.ListRoundsAsync(new ListRoundsRequest { RunId = one.Id }));
        Assert.Equal([1, 2], twoList.Rounds.Select(r => r.Round));
        Assert.Equal(oneList.Rounds.Select(r => r.Round), twoList.Rounds.Select(r => r.Round));
        Assert.Equal(2, twoList.Rounds[1].Metrics["shards/judge/count"]);
        for (int i = 0; i < oneList.Rounds.Count; i++)
        {
            Assert.Equal(await RunProbe.WeightsSha256(cluster, oneList.Rounds[i].Checkpoint),
                await RunProbe.WeightsSha256(cluster, twoList.Rounds[i].Checkpoint));
            Assert.Equal(Comparable(oneList.Rounds[i].Metrics), Comparable(twoList.Rounds[i].Metrics));
        }
    }

    private static async Task<SiloProcess> SiloThatLogsAsync(LocalTestCluster cluster, string line, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout; // bounds a test gone wrong; the line itself is what the test waits for
        while (DateTime.UtcNow < deadline)
        {
            var silos = cluster.Silos.Where(s => s.Output.Contains(line, StringComparison.Ordinal)).ToList();
            if (silos.Count > 0) return Assert.Single(silos);
            await Task.Delay(200);
        }
        throw new TimeoutException($"no silo logged \"{line}\"");
    }

    private static SortedDictionary<string, double> Comparable(IDictionary<string, double> metrics) =>
        new(metrics.Where(kv => !kv.Key.StartsWith("time/", StringComparison.Ordinal) && !kv.Key.StartsWith("shards/", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal);
}
