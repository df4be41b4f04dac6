using OnlineAlign.Api.V1;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Silo.Api;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Cluster;

/// <summary>Runs go to the GPU silos with the most device memory left; one that fits nowhere waits, then starts.</summary>
[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class PlacementByLoadTests
{
    [Fact]
    public async Task TwoRunsTakeTheTwoGpuSilosAndAThirdWaitsForMemoryThenStartsWhenOneFinishes()
    {
        var spec = LocalTestCluster.SmallSpec(rounds: 1);
        spec.GenerationReplicas = 1;
        // Each GPU silo offers one and a half of the run's plan (sampling.batch_size 64: the plan does not depend on it).
        long plan = RunSpecMapping.Plan(SpecConversion.FromProto(spec), cpu: true)!.Peak;
        var gpu = new Dictionary<string, string> { ["Silo__DeviceMemoryBytes"] = (plan + plan / 2).ToString(System.Globalization.CultureInfo.InvariantCulture) };
        await using var cluster = await LocalTestCluster.StartAsync(("control", null), ("gpu", gpu), ("gpu", gpu));
        var client = cluster.Client(0);
        cluster.Faults.Hold("train/round-1/start");
        // The second starts once the first is placed (its worker reached its prepare phase, which it calls only after the
        // ledger placed it), not once the first trains: the two warm-start and generate side by side on their two silos.
        const string prepared = "prepare/round-0/start";
        cluster.Faults.Hold(prepared);
        var first = await client.StartRunAsync(new StartRunRequest { Spec = spec });
        await cluster.Faults.WaitUntilReachedAsync(prepared, TimeSpan.FromMinutes(4));
        cluster.Faults.Release(prepared);
        var second = await client.StartRunAsync(new StartRunRequest { Spec = spec });
        await UntilTrainingAsync(client, first.Id);
        await UntilTrainingAsync(client, second.Id);

        // By load, not by the run's hash: the first run, alone, took the tie's winner (the GPU silo whose address,
        // "127.0.0.1:{port}@{generation}", sorts first), and the second the silo the first left empty.
        int Silo(string runId) => cluster.Silos.FindIndex(s => s.Output.Contains($"run {runId} round 1 generate shard 0 started", StringComparison.Ordinal));
        var byAddress = new[] { 1, 2 }.OrderBy(i => $"{cluster.Silos[i].SiloPort}@", StringComparer.Ordinal).ToList();
        Assert.Equal(byAddress, new[] { Silo(first.Id), Silo(second.Id) });

        // The third fits beside neither: it waits, saying so, instead of running out of memory.
        var third = await client.StartRunAsync(new StartRunRequest { Spec = spec });
        var waiting = await RunProbe.WaitForAsync(client, third.Id, r => r.Status == "waiting_for_gpu" && r.Error.Contains("does not fit", StringComparison.Ordinal),
            TimeSpan.FromMinutes(2));
        Assert.Contains("waiting for GPU memory", waiting.Error);
        Assert.Equal(0, waiting.CommittedRounds);

        // The two finish and free their memory: the third starts and completes.
        cluster.Faults.Release("train/round-1/start");
        foreach (var run in new[] { first, second })
            await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(4));
        var done = await RunProbe.WaitForAsync(client, third.Id, r => r.Status == "completed", TimeSpan.FromMinutes(4));
        Assert.Equal(1, done.CommittedRounds);
        Assert.Contains(Silo(third.Id), new[] { 1, 2 });
        var metrics = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = third.Id })).Rounds.Single().Metrics;
        Assert.Equal(1, metrics["shards/replicas"]);
        foreach (var phase in new[] { "generate", "judge", "train" }) Assert.True(metrics[$"shards/{phase}/tokens_per_second"] > 0, phase);
    }

    /// <summary>Until the run is held at round 1's training (its placement was made at its first step).</summary>
    private static async Task UntilTrainingAsync(Runs.RunsClient client, string runId)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        while ((await client.GetRunAsync(new GetRunRequest { RunId = runId }, cancellationToken: deadline.Token)) is not { Round: 1, Phase: "train" })
            await Task.Delay(250, deadline.Token);
    }
}
