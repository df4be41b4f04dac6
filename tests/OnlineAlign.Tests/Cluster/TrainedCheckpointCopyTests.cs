using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OnlineAlign.Tests.Cluster;

/// <summary>
/// The other replicas copy a round's trained checkpoint from the trainer instead of waiting for its upload
/// (Silo:CopyTrainedCheckpoint): a full fine-tuning run on two GPU silos (trained on replica 0 alone, evaluated in two
/// shards), round 1's upload held at its fault point. Replica 1 copies the checkpoint from replica 0, file by file
/// verified, and evaluates its shard while the upload is held, so the round reaches its commit wait; round 1 still commits
/// only once the upload is durable, no silo reads that checkpoint from storage, and the run ends as one with the copy off.
/// </summary>
[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class TrainedCheckpointCopyTests(ITestOutputHelper output)
{
    private const string Window = "train/round-1/background-upload";

    private static RunSpec Spec()
    {
        var spec = LocalTestCluster.SmallSpec(rounds: 2);
        spec.GenerationReplicas = 0;   // one replica per GPU silo: 2
        return spec;
    }

    /// <summary>Replicas never let their models go between rounds here (their idle release would read the checkpoints back).</summary>
    private static Dictionary<string, string> Idle() => new(StringComparer.Ordinal) { ["Silo__ReplicaIdleSeconds"] = "86400" };

    [Fact]
    public async Task TheOtherReplicaEvaluatesFromACopyWhileTheUploadIsHeldAndTheRunEndsAsOneWithoutTheCopy()
    {
        await using var cluster = await LocalTestCluster.StartAsync([("control", null), ("gpu", Idle()), ("gpu", Idle())]);
        await SiloLogTail.OnFailureAsync(cluster, output, () => CopiedWhileHeldAsync(cluster));
    }

    private static async Task CopiedWhileHeldAsync(LocalTestCluster cluster)
    {
        cluster.Faults.Hold(Window);
        var client = cluster.Client(0);
        var run = (await client.StartRunAsync(new StartRunRequest { Spec = Spec() })).Id;
        await cluster.Faults.WaitUntilReachedAsync(Window, TimeSpan.FromMinutes(8));
        // Both evaluation shards done with the upload held: the round waits for it at its commit (where the next round's
        // generation starts), not in its evaluation.
        await cluster.Silos[0].WaitForOutputAsync($"run {run} round 1: round 2's generation (shard 0) starts while checkpoint", TimeSpan.FromMinutes(8));
        Assert.Equal(0, (await client.GetRunAsync(new GetRunRequest { RunId = run })).CommittedRounds);
        Assert.Contains("copied from the replica that trained it, while it uploads", string.Concat(cluster.Silos.Select(s => s.Output)));
        cluster.Faults.Release(Window);
        await RunProbe.WaitForAsync(client, run, r => r.Status == "completed", TimeSpan.FromMinutes(10));
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        Assert.True(rounds[0].Metrics.ContainsKey("shards/evaluate/checkpoint_copy_seconds"), "round 1 reports the copy");
        // Round 1's trained checkpoint: kept in memory by the trainer, copied by the other replica, read from storage by no one.
        string log = string.Concat(cluster.Silos.Select(s => s.Output));
        string sha = RunProbe.KeptAs(log, run, rounds[0]);
        Assert.Contains($"checkpoint {sha} copied from the replica that trained it", log);
        Assert.DoesNotContain($"checkpoint {sha} read from storage", log, StringComparison.Ordinal);
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run, rounds: 2, shards: 2);

        // The same spec with the copy off (the run grain's silo decides): every checkpoint file and every metric but times equal.
        cluster.Silos[0].Kill();
        var off = await cluster.ReplaceKilledSiloAsync(0, "control", new Dictionary<string, string> { ["Silo__CopyTrainedCheckpoint"] = "false" },
            TimeSpan.FromMinutes(5));
        // As at the cluster's start: a GPU silo whose metadata has not reached the new control silo yet would get no replica.
        await cluster.WaitUntilEverySiloSeesGpuSilosAsync(2);
        var (offId, offRounds) = await RunProbe.CompletedRunAsync(cluster.Client(cluster.Silos.IndexOf(off)), Spec(), TimeSpan.FromMinutes(10));
        Assert.False(offRounds[0].Metrics.ContainsKey("shards/evaluate/checkpoint_copy_seconds"), "the run with the copy off reports none");
        string offSha = RunProbe.KeptAs(string.Concat(cluster.Silos.Select(s => s.Output)), offId, offRounds[0]);
        Assert.DoesNotContain($"checkpoint {offSha} copied", string.Concat(cluster.Silos.Select(s => s.Output)), StringComparison.Ordinal);
        await RunProbe.AssertSameRoundsAsync(cluster, offRounds, rounds);
    }
}
