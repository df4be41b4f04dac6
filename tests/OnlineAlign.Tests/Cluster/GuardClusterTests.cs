using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Cli.Commands;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Cluster;

[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class GuardClusterTests
{
    /// <summary>
    /// A guarded run of 3 rounds whose threshold must trip in round 1: the verifier's 0/1 scores over 4 samples have a
    /// normalised entropy of at most 0.5, below guard.min_score_entropy 0.9. The run completes after round 1 with
    /// the reason, round 0 (the initial policy) is its best round in GetRun and WatchRun, and an export without a
    /// round takes it. Every health signal is recorded.
    /// </summary>
    [Fact]
    public async Task AGuardedRunWhoseThresholdTripsStopsAndReportsItsBestRound()
    {
        await using var cluster = await LocalTestCluster.StartAsync(("all", null));
        var client = cluster.Client();
        var spec = LocalTestCluster.SmallSpec(rounds: 3);
        spec.PromptsPerRound = 4;
        spec.SftSteps = 5;
        spec.EftExamples = 0;
        spec.Prompts.EvalPrompts = 4;
        spec.Judge = new JudgeSpec { Kind = "verifier" };
        spec.Guard = new GuardSpec { Enabled = true, MinScoreEntropy = 0.9, ProbePrompts = 2 };
        var run = await client.StartRunAsync(new StartRunRequest { Spec = spec });
        var done = await RunProbe.WaitForAsync(client, run.Id, r => r.Status is "completed" or "failed", TimeSpan.FromMinutes(3));

        Assert.Equal("completed", done.Status);
        Assert.Equal(1, done.CommittedRounds);
        // Other signals of a barely warm-started model may cross their default bounds too; the entropy must be among them.
        Assert.StartsWith("the guard stopped the run after round 1: ", done.StopReason);
        Assert.Matches(@"health/score_entropy [0-9.]+ below guard\.min_score_entropy 0\.9", done.StopReason);
        Assert.EndsWith("; best round 0", done.StopReason);
        Assert.True(done.HasBestRound);
        Assert.Equal(0, done.BestRound);
        Assert.Contains("the last round before round 1's health signals crossed", done.BestReason);

        var listed = await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id });
        foreach (var signal in new[] { "health/kl_initial", "health/kl_initial_per_token",
                     "health/length_drift", "health/score_entropy", "health/unscored_rate", "health/judge_drift_tau" })
            Assert.True(listed.Rounds[0].Metrics.ContainsKey(signal), $"round 1 has no {signal}");
        // Round 1's judge is the round-0 judge: tau 1, or NaN where the verifier ties every probe response.
        double drift = listed.Rounds[0].Metrics["health/judge_drift_tau"];
        Assert.True(drift == 1 || double.IsNaN(drift), $"health/judge_drift_tau {drift} in round 1");
        Assert.Equal(0, listed.Initial.Metrics["health/kl_initial"]);
        Assert.Equal(0, listed.Initial.Metrics["health/kl_initial_per_token"]);
        // The verifier is the checker that labelled the pairwise set: a perfect judge of it, in round 0 and in round 1.
        foreach (var metrics in new[] { listed.Initial.Metrics, listed.Rounds[0].Metrics })
        {
            Assert.Equal(1, metrics["judge/pairwise_accuracy"]);
            Assert.Equal(32, metrics["judge/pairwise_count"]);
        }

        // WatchRun's last event of a stopped run carries the same verdict.
        using var watch = client.WatchRun(new WatchRunRequest { RunId = run.Id, FromRound = 1 });
        Run? last = null;
        await foreach (var e in watch.ResponseStream.ReadAllAsync()) if (e.Run is { } r) last = r;
        Assert.Equal(0, last!.BestRound);
        Assert.Equal(done.StopReason, last.StopReason);

        // An export without --round takes the best round.
        Assert.Equal(0, await RunCommands.BestOrLast(client, run.Id, CancellationToken.None));
    }
}
