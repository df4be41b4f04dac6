using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Cluster;

/// <summary>A LoRA run trained data-parallel over two GPU silos gives the checkpoints one replica gives, bit for bit.</summary>
[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class DataParallelTrainingClusterTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>A LoRA run that trains data-parallel on <paramref name="replicas"/> replicas (ShardFaultTests kills a silo inside its exchange).</summary>
    internal static RunSpec LoraSpec(int replicas)
    {
        var spec = LocalTestCluster.SmallSpec(rounds: 2);
        spec.GenerationReplicas = replicas;
        spec.Prompts.EvalPrompts = 16;
        // 4 micro-batches of 4 pairs a step: 2 each on two replicas; the moments carried between rounds as well.
        spec.Optimizer = new OptimizerSpec { CarryState = true, BatchSize = 4, GradientAccumulation = 4, LearningRate = 1e-3, WeightDecay = 0.01 };
        spec.Model = new ModelSpec { Lora = new LoraSpec { R = 8, Alpha = 16, TargetModules = { "q_proj", "v_proj", "down_proj" } } };
        return spec;
    }

    [Fact]
    public async Task ALoraRunTrainedOnTwoReplicasWritesTheCheckpointsOneReplicaWrites()
    {
        // Replicas never let their models go between rounds here (their idle release would read the checkpoints back).
        var idle = new Dictionary<string, string> { ["Silo__ReplicaIdleSeconds"] = "86400" };
        await using var cluster = await LocalTestCluster.StartAsync([("control", null), ("gpu", idle), ("gpu", idle)]);
        var client = cluster.Client(0);
        var parallel = await client.StartRunAsync(new StartRunRequest { Spec = LoraSpec(replicas: 0) });   // one replica per GPU silo: 2
        var one = await client.StartRunAsync(new StartRunRequest { Spec = LoraSpec(replicas: 1) });
        await RunProbe.WaitForAsync(client, parallel.Id, r => r.Status == "completed", TimeSpan.FromMinutes(10));
        await RunProbe.WaitForAsync(client, one.Id, r => r.Status == "completed", TimeSpan.FromMinutes(10));

        var parallelRounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = parallel.Id })).Rounds;
        var oneRounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = one.Id })).Rounds;
        Assert.Equal([1, 2], parallelRounds.Select(r => r.Round));
        Assert.Equal([1, 2], oneRounds.Select(r => r.Round));
        for (int i = 0; i < 2; i++)
        {
            // Every file of the checkpoint: the adapter, the carried AdamW moments, the per-step metrics, the run state.
            var want = await RunProbe.CheckpointFilesAsync(cluster, oneRounds[i].Checkpoint);
            Assert.Contains("adapter_model.safetensors", want.Keys);
            Assert.Contains("optimizer.safetensors", want.Keys);
            Assert.Equal(want, await RunProbe.CheckpointFilesAsync(cluster, parallelRounds[i].Checkpoint));
            Assert.Equal(oneRounds[i].Metrics["loss"], parallelRounds[i].Metrics["loss"]);
            Assert.Equal(oneRounds[i].Metrics["grad_norm"], parallelRounds[i].Metrics["grad_norm"]);
            Assert.True(parallelRounds[i].Metrics["time/exchange"] >= 0);   // waiting for and exchanging with replica 1
            Assert.DoesNotContain("time/exchange", oneRounds[i].Metrics.Keys);
        }

        // The training really was spread: replica 1 trained on the other GPU silo, replica 0 coordinated both rounds.
        for (int round = 1; round <= 2; round++)
        {
            string replicaLine = $"run {parallel.Id} round {round} train replica 1 of 2 started";
            string coordinatorLine = $"run {parallel.Id} round {round} trained on 2 replicas";
            int replica = cluster.Silos.FindIndex(s => s.Output.Contains(replicaLine));
            int coordinator = cluster.Silos.FindIndex(s => s.Output.Contains(coordinatorLine));
            Assert.True(replica > 0 && coordinator > 0 && replica != coordinator, $"round {round}: replica 1 on silo {replica}, replica 0 on silo {coordinator}");
        }
        Assert.DoesNotContain(cluster.Silos, s => s.Output.Contains($"run {one.Id} round 1 train replica"));

        // Both replicas kept what they trained in memory under the checkpoint's hash (replica 0 from its log line, replica 1
        // told the hash once it was known) and no silo read a trained adapter or its moments back: round 2 generated,
        // judged, trained (both replicas) and evaluated from the copies kept. The bytes equal one replica's (above).
        string logs = string.Concat(cluster.Silos.Select(s => s.Output));
        foreach (var round in parallelRounds)
        {
            string sha = RunProbe.KeptAs(logs, parallel.Id, round);
            Assert.Contains($"trained model kept in memory as checkpoint {sha} (data-parallel replica 1)", logs);
            Assert.DoesNotContain($"checkpoint {sha} read into memory", logs);   // the model, or "optimizer state of checkpoint ..."
            // Nor downloaded whole: replica 1 (holding the model and its moments) reads only the small files, its tokenizer and
            // config (round 1's checkpoint for its round-2 shards and training, either for an evaluation shard); replica 0 keeps
            // the folder it wrote.
            if (round.Round == 1) Assert.Contains($"checkpoint {sha} read from storage in part (without-weights-and-moments)", logs);
            Assert.DoesNotContain($"checkpoint {sha} read from storage:", logs);
        }
        // What each silo read from storage (the bytes a part saves are in its line), for the test's log.
        foreach (var line in logs.Split('\n').Where(l => l.Contains(" read from storage", StringComparison.Ordinal)))
            output.WriteLine(line.Trim());
    }
}
