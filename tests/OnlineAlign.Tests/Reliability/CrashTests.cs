using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Reliability;

[Collection("processes")]
public class CrashTests
{
    /// <summary>Phases long enough on 2 CPU cores to be caught in the act, and an upload cap so a checkpoint takes seconds.</summary>
    private static RunSpec CrashSpec()
    {
        var spec = LocalTestCluster.FaultSpec(rounds: 3, prompts: 128);
        spec.Sampling.MaxNewTokens = 12;
        spec.Optimizer.CarryState = true;
        return spec;
    }

    private static readonly Dictionary<string, string> SlowUploads = new() { ["Silo__MaxUploadMegabytesPerSecond"] = "2" };

    [Fact]
    public async Task KillsDuringGenerationTrainingAndUploadResumeToBitIdenticalWeights()
    {
        await using var cluster = await LocalTestCluster.StartAsync(("all", SlowUploads));
        var run = await cluster.Client().StartRunAsync(new StartRunRequest { Spec = CrashSpec() });

        // SIGKILL the only silo in the middle of a phase, three times, and start a fresh one each time.
        int silo = 0;
        foreach (var (round, phase) in new[] { (1, "generate"), (2, "train"), (3, "checkpoint") })
        {
            await RunProbe.WaitForPhaseAsync(cluster.Client(silo), run.Id, round, phase, TimeSpan.FromMinutes(3));
            cluster.Silos[silo].Kill();
            await cluster.AddSiloAsync("all", SlowUploads, timeout: TimeSpan.FromMinutes(5));
            silo++;
        }
        var client = cluster.Client(silo);
        var done = await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(5));
        Assert.Equal(3, done.CommittedRounds);
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2, 3], rounds.Select(r => r.Round)); // none skipped, none twice
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 3);

        // The same spec without interruption ends with the same policy weights, bit for bit (CPU): no sample was
        // skipped or repeated, no step trained twice, and the optimiser state resumed exactly.
        var again = await client.StartRunAsync(new StartRunRequest { Spec = CrashSpec() });
        await RunProbe.WaitForAsync(client, again.Id, r => r.Status == "completed", TimeSpan.FromMinutes(5));
        var uninterrupted = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = again.Id })).Rounds;
        Assert.Equal(await RunProbe.WeightsSha256(cluster, uninterrupted[^1].Checkpoint), await RunProbe.WeightsSha256(cluster, rounds[^1].Checkpoint));
        foreach (var key in new[] { "generation/length_mean", "judge/score_mean", "pairs/kept", "loss", "eval/accuracy" })
            Assert.Equal(uninterrupted[1].Metrics[key], rounds[1].Metrics[key]);
    }
}
