using System.Globalization;
using System.Text.RegularExpressions;
using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Reliability;

[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class RetentionClusterTests
{
    /// <summary>
    /// Ten tiny rounds with retention.keep_last 2: storage ends up holding the checkpoints of round 0 (the initial
    /// policy), the last two rounds and the best one, and no others; every round's record and metrics stay, those
    /// whose checkpoint went say so, and exporting one says why it cannot. On the way, round 3's checkpoint upload
    /// meets a full disk once: the round is trained again and the failed checkpoint's local files are gone from the silo,
    /// but only after the evaluation that reads them (held until the upload has failed) has finished with them.
    /// </summary>
    [Fact]
    public async Task TenRoundsWithKeepLastTwoLeaveOnlyTheKeptCheckpointsInStorage()
    {
        string data = RepositoryPaths.NewTempFolder("silo-data");
        await using var cluster = await LocalTestCluster.StartAsync(("all", new Dictionary<string, string> { ["Silo__DataFolder"] = data }));
        var client = cluster.Client();
        cluster.Faults.Fail("train/round-3/upload", "diskfull", 1);
        const string evaluation = "evaluate/round-3/start";
        cluster.Faults.Hold(evaluation);
        var spec = LocalTestCluster.SmallSpec(rounds: 10);
        spec.PromptsPerRound = 8;
        spec.SamplesPerPrompt = 2;
        spec.SftSteps = 20;
        spec.EftExamples = 0;
        spec.Prompts.EvalPrompts = 4;
        spec.Judge = new JudgeSpec { Kind = "verifier" };
        spec.Retention = new RetentionSpec { KeepLast = 2 };
        var run = await client.StartRunAsync(new StartRunRequest { Spec = spec });
        // Round 3's evaluation starts once the upload behind it has failed: its local copy must still be there to read.
        await cluster.Silos[0].WaitForOutputAsync("disk full (local disk of silo", TimeSpan.FromMinutes(6));
        cluster.Faults.Release(evaluation);
        await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(6));

        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal(Enumerable.Range(1, 10), rounds.Select(r => r.Round));
        Assert.All(rounds, r => Assert.True(r.Metrics.ContainsKey("eval/accuracy"), $"round {r.Round} lost its metrics"));
        var best = rounds.Where(r => double.IsFinite(r.Metrics["eval/accuracy"])).MaxBy(r => r.Metrics["eval/accuracy"])!.Round;
        var kept = new SortedSet<int> { 0, 9, 10, best };
        Assert.Equal(Enumerable.Range(1, 10).Where(k => !kept.Contains(k)), rounds.Where(r => r.CheckpointDeleted).Select(r => r.Round));

        // What storage holds: checkpoint files (manifests, weights) of the kept rounds only.
        var blobs = await RunProbe.BlobsAsync(cluster, $"runs/{run.Id}/");
        int RoundOf(string blob) => int.Parse(Regex.Match(blob, @"/round-(\d{4})/").Groups[1].Value, CultureInfo.InvariantCulture);
        var checkpointFiles = blobs.Where(b => Regex.IsMatch(b, @"/(train|prepare)/[0-9a-f]{32}/")).ToList();
        // M0, stored beside round 0's policy for the judges, stays with round 0 (retention never removes round 0).
        var m0Files = checkpointFiles.Where(b => b.Contains("/m0/", StringComparison.Ordinal)).ToList();
        Assert.Single(m0Files, b => b.EndsWith("/manifest.json", StringComparison.Ordinal));
        Assert.All(m0Files, b => Assert.Equal(0, RoundOf(b)));
        checkpointFiles = checkpointFiles.Except(m0Files).ToList();
        Assert.Equal(kept, checkpointFiles.Select(RoundOf).ToHashSet().Order());
        Assert.Equal(kept, checkpointFiles.Where(b => b.EndsWith("/manifest.json", StringComparison.Ordinal)).Select(RoundOf).Order());
        Assert.All(kept, k => Assert.Contains(checkpointFiles, b => RoundOf(b) == k && b.EndsWith("/model.safetensors", StringComparison.Ordinal)));

        var gone = rounds.First(r => r.CheckpointDeleted).Round;
        var refused = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var export = client.ExportPolicy(new ExportPolicyRequest { RunId = run.Id, Round = gone });
            while (await export.ResponseStream.MoveNext(CancellationToken.None)) { }
        });
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("removed by the run's retention", refused.Status.Detail);

        // The full disk: named in the log, retried, and its attempt's partial checkpoint removed from the silo's disk.
        Assert.Equal(1, cluster.Faults.Hits("train/round-3/upload"));
        Assert.Contains("disk full (local disk of silo", cluster.Silos[0].Output);
        // The upload runs behind the evaluation (Silo:OverlapCheckpointUpload) from the checkpoint's local copy, which goes
        // once the round's evaluation has read it (it finished: "round 3 done"), when the train phase is asked again.
        string output = cluster.Silos[0].Output;
        int evaluated = output.IndexOf($"run {run.Id} round 3 done", StringComparison.Ordinal);
        int removed = output.IndexOf("removed the local copy", StringComparison.Ordinal);
        Assert.True(evaluated >= 0 && removed > evaluated, $"round 3 evaluated at {evaluated}, its local copy removed at {removed}");
        Assert.DoesNotContain(Directory.GetFiles(data, "*", SearchOption.AllDirectories), f => f.Contains($"{Path.DirectorySeparatorChar}scratch{Path.DirectorySeparatorChar}"));
    }
}
