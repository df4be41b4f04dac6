using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Reliability;

/// <summary>
/// Replicas that come and go under a sharded run: a silo killed inside its judge shard has the shard redone on a live
/// silo (the round keeps its shard cut, so the run equals an uninterrupted one bit for bit), and a GPU silo that joins
/// between rounds takes a share of the next round.
/// </summary>
[Collection("processes")]
[Trait("Kind", "Cluster")]
public class ShardFaultTests
{
    private static RunSpec TwoReplicas()
    {
        var spec = LocalTestCluster.SmallSpec(rounds: 2);
        spec.GenerationReplicas = 2;
        return spec;
    }

    /// <param name="shard">1: replica 1's silo dies (replica 0, which merges and trains, lives on); 0: replica 0's silo dies</param>
    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    public async Task ASiloKilledInsideItsJudgeShardHasTheShardRedoneOnceAndTheRunEqualsAnUninterruptedOne(int shard)
    {
        await using var cluster = await LocalTestCluster.StartAsync(("control", null), ("gpu", null), ("gpu", null));
        var client = cluster.Client(0);
        // One replica's judge shard of round 2 stops on its silo; the other replica's shard runs on the other GPU silo.
        string held = $"judge-shard/round-2/shard-{shard}";
        cluster.Faults.Hold(held);
        var run = await client.StartRunAsync(new StartRunRequest { Spec = TwoReplicas() });
        await cluster.Faults.WaitUntilReachedAsync(held, TimeSpan.FromMinutes(6));
        int victim = cluster.Silos.FindIndex(s => s.ProcessId == cluster.Faults.ReachedBy(held));
        Assert.True(victim is 1 or 2, $"judge shard {shard} runs on a GPU silo");
        int survivor = 3 - victim;
        // The console logger writes from its own queue: wait for the line rather than expect it already read.
        await cluster.Silos[victim].WaitForOutputAsync($"run {run.Id} round 2 judge shard {shard} started", TimeSpan.FromMinutes(1));
        await cluster.Silos[survivor].WaitForOutputAsync($"run {run.Id} round 2 judge shard {1 - shard} started", TimeSpan.FromMinutes(2));
        cluster.Silos[victim].Kill();
        cluster.Faults.Release(held);

        // The round keeps the 2 replicas it started with: the lost one is placed again, on the one GPU silo left, beside
        // the other (replica 0 lost: the run's worker, which merges and trains, is placed there too).
        await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));
        await cluster.Silos[survivor].WaitForOutputAsync($"run {run.Id} round 2 judge shard {shard} started", TimeSpan.FromMinutes(1));
        await cluster.Silos[survivor].WaitForOutputAsync($"run {run.Id} round 2 done", TimeSpan.FromMinutes(1));
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 2, shards: 2);
        // Each judge shard counted once: one finished output and one done marker per shard, and the merge (which
        // refuses an item missing or seen twice) took two.
        var judgeShards = await RunProbe.BlobsAsync(cluster, $"runs/{run.Id}/round-0002/judge-shard/");
        Assert.Equal(1, judgeShards.Count(b => b.EndsWith("/shard-0.json", StringComparison.Ordinal)));
        Assert.Equal(1, judgeShards.Count(b => b.EndsWith("/shard-1.json", StringComparison.Ordinal)));
        Assert.Equal(2, judgeShards.Count(b => b.Contains("/done-", StringComparison.Ordinal)));
        Assert.Equal(2, rounds[1].Metrics["shards/judge/count"]);

        // The same spec, uninterrupted, on the same (now one-GPU-silo) cluster: every round's weights and every metric equal.
        var again = await client.StartRunAsync(new StartRunRequest { Spec = TwoReplicas() });
        await RunProbe.WaitForAsync(client, again.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));
        var uninterrupted = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = again.Id })).Rounds;
        Assert.Equal(uninterrupted.Select(r => r.Round), rounds.Select(r => r.Round));
        for (int i = 0; i < rounds.Count; i++)
        {
            Assert.Equal(await RunProbe.WeightsSha256(cluster, uninterrupted[i].Checkpoint), await RunProbe.WeightsSha256(cluster, rounds[i].Checkpoint));
            Assert.Equal(Comparable(uninterrupted[i].Metrics), Comparable(rounds[i].Metrics));
        }
    }

    [Fact]
    public async Task AGpuSiloThatJoinsBetweenRoundsTakesAShareOfTheNextRound()
    {
        await using var cluster = await LocalTestCluster.StartAsync(("control", null), ("gpu", null));
        var client = cluster.Client(0);
        var spec = LocalTestCluster.SmallSpec(rounds: 2);
        spec.GenerationReplicas = 0;   // one replica per GPU silo active when a round starts
        // Round 1's evaluation (one replica: whole, on the run's worker) is the last phase before round 2 starts.
        const string held = "evaluate/round-1/start";
        cluster.Faults.Hold(held);
        var run = await client.StartRunAsync(new StartRunRequest { Spec = spec });
        await cluster.Faults.WaitUntilReachedAsync(held, TimeSpan.FromMinutes(6));
        await cluster.AddSiloAsync("gpu", timeout: TimeSpan.FromMinutes(3));
        // The orchestrator's silo (either of the first two) counts the GPU silos it sees when the round starts: wait
        // until both see the new one.
        foreach (var silo in cluster.Silos.Take(2)) await GpuSilosSeenAsync(silo, 2);
        cluster.Faults.Release(held);

        await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        var (first, second) = (rounds[0].Metrics, rounds[1].Metrics);
        // Round 1 ran on the one replica it started with; round 2 on two, one of them on the new silo.
        Assert.DoesNotContain("shards/judge/count", first.Keys);
        Assert.DoesNotContain("shards/evaluate/count", first.Keys);
        Assert.Equal(2, second["shards/judge/count"]);
        Assert.Equal(2, second["shards/evaluate/count"]);
        Assert.Equal(2, second["shards/generate/count"]);
        // On different GPU silos, the new one among them: the workers were placed again when the count changed (left as
        // they were, replica 0 stays on the first silo and replica 1 lands there too for about half of all run ids).
        Assert.Contains(cluster.Silos, s => s.Output.Contains($"run {run.Id} round 2: 2 replicas (the last round had 1): its workers are placed again",
            StringComparison.Ordinal));
        var judgeShardSilos = Enumerable.Range(0, 2).Select(k =>
            cluster.Silos.FindIndex(s => s.Output.Contains($"run {run.Id} round 2 judge shard {k} started", StringComparison.Ordinal))).ToList();
        Assert.Equal([1, 2], judgeShardSilos.Order());
        Assert.DoesNotContain($"run {run.Id} round 1 ", cluster.Silos[2].Output);
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 1, shards: 1);
    }

    /// <summary>Waits until the silo's onlinealign_cluster_gpu_silos gauge reads the count (the timeout bounds a test gone wrong).</summary>
    private static async Task GpuSilosSeenAsync(SiloProcess silo, int count)
    {
        using var http = new HttpClient();
        var deadline = DateTime.UtcNow.AddMinutes(2);
        string body = "";
        while (DateTime.UtcNow < deadline)
        {
            body = await http.GetStringAsync($"http://127.0.0.1:{silo.MetricsPort}/metrics");
            if (body.Split('\n').Any(l => l.StartsWith("onlinealign_cluster_gpu_silos", StringComparison.Ordinal)
                                         && l.EndsWith($" {count}", StringComparison.Ordinal)))
                return;
            await Task.Delay(250);
        }
        throw new TimeoutException($"the silo never reported {count} GPU silos:\n{body}");
    }

    /// <summary>Every metric but wall times and those made of them (shard timings, tokens/s, stragglers); the shard and
    /// token counts stay: both runs used 2 replicas.</summary>
    private static SortedDictionary<string, double> Comparable(IDictionary<string, double> metrics) =>
        new(metrics.Where(kv => !kv.Key.StartsWith("time/", StringComparison.Ordinal)
                                && !kv.Key.EndsWith("_seconds", StringComparison.Ordinal)
                                && !kv.Key.EndsWith("/tokens_per_second", StringComparison.Ordinal)
                                && !kv.Key.EndsWith("/slowest_over_mean", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal);
}
