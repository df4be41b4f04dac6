using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Reliability;

[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class IsolationTests
{
    /// <summary>Three different runs, half the usual prompts a round: what is compared is each run's own output, not how much it learns.</summary>
    private static RunSpec[] Specs()
    {
        var a = Half(LocalTestCluster.SmallSpec(rounds: 2));
        var b = Half(LocalTestCluster.SmallSpec(rounds: 2));
        b.Seed = 8;
        b.Loss = new LossSpec { Kind = "ipo", Beta = 0.5 };
        var c = Half(LocalTestCluster.SmallSpec(rounds: 2));
        c.Seed = 9;
        c.Judge = new JudgeSpec { Kind = "verifier" };
        return [a, b, c];
    }

    private static RunSpec Half(RunSpec spec)
    {
        spec.PromptsPerRound /= 2;
        return spec;
    }

    [Fact]
    public async Task ThreeRunsAtOnceUnderApiLoadEqualTheSameRunsOneAtATime()
    {
        // The 50 streams below stand for many clients, all from this process's address: above the per-client cap of 16.
        await using var cluster = await LocalTestCluster.StartAsync(("all", new Dictionary<string, string> { ["Api__MaxWatchStreamsPerClient"] = "64" }));
        var client = cluster.Client();
        var runs = new List<Run>();
        foreach (var spec in Specs()) runs.Add(await client.StartRunAsync(new StartRunRequest { Spec = spec }));

        // While they run: 50 live streams over the three runs, and GetRun polling at about 200 calls/s.
        using var stop = new CancellationTokenSource();
        int errors = 0, calls = 0;
        var committedSeen = new int[50];
        var watchers = Enumerable.Range(0, 50).Select(async i =>
        {
            try
            {
                using var stream = client.WatchRun(new WatchRunRequest { RunId = runs[i % 3].Id }, cancellationToken: stop.Token);
                while (await stream.ResponseStream.MoveNext(stop.Token))
                    if (stream.ResponseStream.Current.RoundCommitted is not null) committedSeen[i]++;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled) { }
            catch (OperationCanceledException) { }
            catch (Exception) { Interlocked.Increment(ref errors); }
        }).ToList();
        var pollers = Enumerable.Range(0, 10).Select(async i =>
        {
            while (!stop.IsCancellationRequested)
            {
                try { await client.GetRunAsync(new GetRunRequest { RunId = runs[i % 3].Id }); Interlocked.Increment(ref calls); }
                catch (Exception) { Interlocked.Increment(ref errors); }
                await Task.Delay(50);
            }
        }).ToList();
        foreach (var run in runs)
            await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(6));
        await Task.WhenAll(watchers); // streams end by themselves when their run completes
        stop.Cancel();
        await Task.WhenAll(pollers);
        Assert.Equal(0, errors);
        Assert.All(committedSeen, n => Assert.Equal(2, n)); // every stream saw both commits, none twice
        Assert.True(calls > 100, $"only {calls} GetRun calls were made");

        // The same specs alone, one after another, give the same weights and metrics.
        var specs = Specs();
        for (int k = 0; k < specs.Length; k++)
        {
            var alone = await client.StartRunAsync(new StartRunRequest { Spec = specs[k] });
            await RunProbe.WaitForAsync(client, alone.Id, r => r.Status == "completed", TimeSpan.FromMinutes(3));
            var together = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = runs[k].Id })).Rounds;
            var separate = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = alone.Id })).Rounds;
            Assert.Equal(await RunProbe.WeightsSha256(cluster, separate[^1].Checkpoint), await RunProbe.WeightsSha256(cluster, together[^1].Checkpoint));
            foreach (var key in new[] { "judge/score_mean", "pairs/kept", "loss", "eval/accuracy" })
                Assert.Equal(separate[^1].Metrics[key], together[^1].Metrics[key]);
            // Not a vacuous equality: every round of the run trained on pairs.
            Assert.All(together, r => Assert.True(r.Metrics["pairs/kept"] > 0, $"run {k} round {r.Round} kept no pairs"));
        }
    }
}
