using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Cluster;

/// <summary>
/// Silo:ReplicaIdleSeconds: a run's extra replica left idle lets its models go (its activation ends), and the next phase
/// it is given loads them again, with results equal to a run whose only replica never let anything go.
/// </summary>
[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class ReplicaIdleReleaseTests
{
    [Fact]
    public async Task AnIdleReplicaLetsItsModelsGoAndLoadsThemAgainForItsNextShardWithTheSameResult()
    {
        // No idle time elapses in this test (a day: the timer never fires); the release is fired at a named point instead.
        var idle = new Dictionary<string, string> { ["Silo__ReplicaIdleSeconds"] = "86400" };
        await using var cluster = await LocalTestCluster.StartAsync(("control", idle), ("gpu", idle), ("gpu", idle));
        var client = cluster.Client(0);
        // Replica 1 lets its models go once its round 1 pairs shard is done (round 1's training runs on replica 0 alone, so
        // replica 1 has nothing to do until round 1's evaluation): what the idle timer does after Silo:ReplicaIdleSeconds.
        // Only the two-replica run has a replica 1.
        cluster.Faults.Fire("replica-idle/pairs/replica-1", times: 1);
        var twoSpec = LocalTestCluster.SmallSpec(rounds: 2);
        twoSpec.GenerationReplicas = 2;
        var oneSpec = LocalTestCluster.SmallSpec(rounds: 2);
        oneSpec.GenerationReplicas = 1;
        var two = await client.StartRunAsync(new StartRunRequest { Spec = twoSpec });
        var one = await client.StartRunAsync(new StartRunRequest { Spec = oneSpec });
        string replica = $"{two.Id}#gen1";
        var silo = await SiloThatLogsAsync(cluster, $"replica {replica} lets its models go: its idle release was fired after its pairs call",
            TimeSpan.FromMinutes(8));
        int releasedAt = silo.Output.IndexOf($"replica {replica} lets its models go", StringComparison.Ordinal);
        Assert.Contains($"run {two.Id} round 1 judge shard 1 started", silo.Output[..releasedAt], StringComparison.Ordinal);

        await RunProbe.WaitForAsync(client, two.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));
        await RunProbe.WaitForAsync(client, one.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));
        Assert.Equal(1, cluster.Faults.Hits("replica-idle/pairs/replica-1"));
        // After the release, replica 1 (a new activation on the same silo, reading its models into memory again) ran round
        // 1's evaluation shard and round 2's shards.
        await silo.WaitForOutputAsync($"run {two.Id} round 2 judge shard 1 started", TimeSpan.FromMinutes(1));
        string after = silo.Output[releasedAt..];
        Assert.Contains($"run {two.Id} round 1 evaluate shard 1 started", after, StringComparison.Ordinal);
        Assert.Contains($"run {two.Id} round 2 judge shard 1 started", after, StringComparison.Ordinal);
        // A checkpoint replica 1 had in memory before the release is read into memory again after it.
        var readBefore = ReadIntoMemory(silo.Output[..releasedAt], replica);
        Assert.NotEmpty(readBefore.Intersect(ReadIntoMemory(after, replica)));

        var (twoList, oneList) = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = two.Id }),
            await client.ListRoundsAsync(new ListRoundsRequest { RunId = one.Id }));
        Assert.Equal([1, 2], twoList.Rounds.Select(r => r.Round));
        Assert.Equal(oneList.Rounds.Select(r => r.Round), twoList.Rounds.Select(r => r.Round));
        Assert.Equal(2, twoList.Rounds[1].Metrics["shards/judge/count"]);
        for (int i = 0; i < oneList.Rounds.Count; i++)
        {
            Assert.Equal(await RunProbe.WeightsSha256(cluster, oneList.Rounds[i].Checkpoint),
                await RunProbe.WeightsSha256(cluster, twoList.Rounds[i].Checkpoint));
            Assert.Equal(RunProbe.ComparableAcrossReplicaCounts(oneList.Rounds[i].Metrics), RunProbe.ComparableAcrossReplicaCounts(twoList.Rounds[i].Metrics));
        }
    }

    /// <summary>
    /// The production timer itself (Silo:ReplicaIdleSeconds, not a fault point). Replica 0's round 1 train phase is held
    /// at its start, before it opens the data-parallel session, so replica 1, whose pairs shard is done, is idle for as
    /// long as the test needs: its timer lets its models go whatever the machine's speed (the gaps a run leaves on its
    /// own are shorter than a second with the tiny model, too short to rely on). Then the session's exchange calls come
    /// through no phase: the timer must not end the activation under an open session (the run would lose its training),
    /// and it does not: both rounds train on both replicas and the run ends with the checkpoints of a run on one replica.
    /// </summary>
    [Fact]
    public async Task TheIdleTimerItselfLetsAReplicasModelsGoAndTheDataParallelRunEndsAsOneOnOneReplica()
    {
        var idle = new Dictionary<string, string> { ["Silo__ReplicaIdleSeconds"] = "0.5" };
        await using var cluster = await LocalTestCluster.StartAsync(("control", null), ("gpu", idle), ("gpu", idle));
        var client = cluster.Client(0);
        const string training = "train/round-1/start";
        cluster.Faults.Hold(training);
        var two = await client.StartRunAsync(new StartRunRequest { Spec = DataParallelTrainingClusterTests.LoraSpec(replicas: 2) });
        var one = await client.StartRunAsync(new StartRunRequest { Spec = DataParallelTrainingClusterTests.LoraSpec(replicas: 1) });
        string replica = $"{two.Id}#gen1";
        var silo = await SiloThatLogsAsync(cluster, $"replica {replica} lets its models go: idle for 0.5 s", TimeSpan.FromMinutes(8));
        cluster.Faults.Release(training);

        await RunProbe.WaitForAsync(client, two.Id, r => r.Status == "completed", TimeSpan.FromMinutes(10));
        await RunProbe.WaitForAsync(client, one.Id, r => r.Status == "completed", TimeSpan.FromMinutes(10));
        string logs = string.Concat(cluster.Silos.Select(s => s.Output));
        Assert.DoesNotContain($"replica {one.Id}#gen", logs, StringComparison.Ordinal);   // a run on one replica has no replica to let go
        for (int round = 1; round <= 2; round++)
        {
            Assert.Contains($"run {two.Id} round {round} trained on 2 replicas", logs, StringComparison.Ordinal);
            Assert.Contains($"run {two.Id} round {round} train replica 1 of 2 started", silo.Output, StringComparison.Ordinal);
        }
        var (twoRounds, oneRounds) = ((await client.ListRoundsAsync(new ListRoundsRequest { RunId = two.Id })).Rounds,
            (await client.ListRoundsAsync(new ListRoundsRequest { RunId = one.Id })).Rounds);
        Assert.Equal([1, 2], twoRounds.Select(r => r.Round));
        Assert.Equal([1, 2], oneRounds.Select(r => r.Round));
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(await RunProbe.CheckpointFilesAsync(cluster, oneRounds[i].Checkpoint), await RunProbe.CheckpointFilesAsync(cluster, twoRounds[i].Checkpoint));
            Assert.Equal(oneRounds[i].Metrics["loss"], twoRounds[i].Metrics["loss"]);
            Assert.Equal(oneRounds[i].Metrics["eval/accuracy"], twoRounds[i].Metrics["eval/accuracy"]);
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
        // What the replicas did, to tell a timer that never fired from one that found no idle time.
        var replicaLines = cluster.Silos.SelectMany(s => s.Output.Split('\n')).Where(l => l.Contains("#gen", StringComparison.Ordinal) || l.Contains(" shard 1 ", StringComparison.Ordinal));
        throw new TimeoutException($"no silo logged \"{line}\"; the replicas' lines:\n{string.Join('\n', replicaLines.TakeLast(60))}");
    }

    /// <summary>The checkpoints (sha256) the worker logged reading into memory.</summary>
    private static HashSet<string> ReadIntoMemory(string log, string worker) =>
        [.. System.Text.RegularExpressions.Regex.Matches(log, $"worker {System.Text.RegularExpressions.Regex.Escape(worker)}: checkpoint ([0-9a-f]+) read into memory")
            .Select(m => m.Groups[1].Value)];

}
