using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OnlineAlign.Tests.Cluster;

/// <summary>
/// The crash points of the next round's generation inside a checkpoint's upload window (Silo:OverlapNextGeneration) that
/// <see cref="UploadOverlapTests"/> leaves out: the orchestrator's silo alone killed, the worker's silo alone killed, the
/// upload failing, and the run paused, each while round 1's upload is held at its fault point and round 2's generation
/// shard 0 runs on that checkpoint. Each run ends with every checkpoint file and every metric but times equal to one uninterrupted run of
/// the same spec, shared by the class (results depend neither on the silos nor on the cluster a run is on).
/// </summary>
[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class UploadOverlapFaultTests(ITestOutputHelper output)
{
    private const string Window = "train/round-1/background-upload";

    /// <summary>One replica, whatever the GPU silos: each case's cluster runs the same shards as the shared reference.</summary>
    private static RunSpec Spec()
    {
        var spec = LocalTestCluster.SmallSpec(rounds: 2);
        spec.Optimizer = new OptimizerSpec { CarryState = true, BatchSize = 8 };
        spec.GenerationReplicas = 1;
        return spec;
    }

    /// <summary>
    /// The control silo, with the run grain, killed while the GPU silo's worker keeps round 1's checkpoint uploading (held) and
    /// generates round 2 on it. That generation, whose caller is gone, still holds the worker (one call at a time) until the
    /// upload is durable, then stores its shard. The run grain activated on a new control silo asks round 1's train phase again
    /// and gets the same checkpoint from the worker (not trained twice, no second checkpoint), its evaluation from the marker,
    /// and round 2's generation from the shard the first one stored.
    /// </summary>
    [Fact]
    public async Task TheOrchestratorsSiloKilledInTheWindowLeavesTheWorkersUploadAndTheRunEndsAsAnUninterruptedOne()
    {
        await using var cluster = await LocalTestCluster.StartAsync(("control", LocalTestCluster.FastProbes()), ("gpu", LocalTestCluster.FastProbes()));
        var gpu = cluster.Silos[1];
        var run = await StartInTheWindowAsync(cluster, gpu, cluster.Client(0));
        cluster.Silos[0].Kill();
        var control = await cluster.AddSiloAsync("control", LocalTestCluster.FastProbes(), TimeSpan.FromMinutes(5));
        var client = cluster.Client(2);
        // The run grain, activated on the new control silo, drives round 1 again while the upload is still held.
        var status = await RunProbe.WaitForAsync(client, run, r => r.Status == "running", TimeSpan.FromMinutes(5));
        Assert.Equal(0, status.CommittedRounds);
        Assert.Empty(await RunProbe.BlobsAsync(cluster, $"runs/{run}/round-0002/"));
        cluster.Faults.Release(Window);
        await RunProbe.WaitForAsync(client, run, r => r.Status == "completed", TimeSpan.FromMinutes(6));
        Log(control, run);
        foreach (var line in gpu.Output.Split('\n').Where(l => l.Contains($"run {run} round 1 train:", StringComparison.Ordinal)
                                                              || l.Contains($"run {run} round 2 generate:", StringComparison.Ordinal)))
            output.WriteLine(line.Length > 300 ? line[..300] : line);

        // Round 1's train phase asked again was answered with the checkpoint trained before the kill (in the runs seen, by its
        // marker: the successor's request waited behind the orphaned generation until the upload was durable).
        Assert.Equal(1, Occurrences(gpu.Output, $"run {run} round 1 trained and checkpointed"));
        // Round 2's generation shard stored by the generation whose orchestrator died, found by its marker.
        Assert.Contains($"run {run} round 2 generate: already done", gpu.Output);
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run })).Rounds;
        // One checkpoint, one evaluation (asked again with the same checkpoint: its marker), one generation of round 2.
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run, rounds: 2);
        await AssertEqualsUninterruptedAsync(cluster, client, rounds);
    }

    /// <summary>
    /// The worker's GPU silo killed while it uploads round 1's checkpoint (held) and generates round 2 on it: that generation
    /// is lost with it and stored nothing, the checkpoint is lost (no manifest, no marker), and the worker, placed on the
    /// other GPU silo, trains round 1 again: the run ends as an uninterrupted one.
    /// </summary>
    [Fact]
    public async Task TheWorkersSiloKilledInTheWindowHasTheRoundTrainedAgainElsewhereAndTheRunEndsAsAnUninterruptedOne()
    {
        await using var cluster = await LocalTestCluster.StartAsync(("control", LocalTestCluster.FastProbes()), ("gpu", LocalTestCluster.FastProbes()), ("gpu", LocalTestCluster.FastProbes()));
        var client = cluster.Client(0);
        cluster.Faults.Hold(Window);
        var run = (await client.StartRunAsync(new StartRunRequest { Spec = Spec() })).Id;
        await cluster.Faults.WaitUntilReachedAsync(Window, TimeSpan.FromMinutes(6));
        int host = cluster.Silos.FindIndex(s => s.ProcessId == cluster.Faults.ReachedBy(Window));
        Assert.True(host is 1 or 2, "the worker's silo is one of the GPU silos");
        var worker = cluster.Silos[host];
        var other = cluster.Silos[3 - host];
        await InTheWindowAsync(cluster, worker, client, run);
        worker.Kill();
        // Released before the round trains again on the other silo, which reaches the same point.
        cluster.Faults.Release(Window);
        await RunProbe.WaitForAsync(client, run, r => r.Status == "completed", TimeSpan.FromMinutes(6));

        // The round's lost checkpoint and early generation left nothing: round 1 trained again on the other GPU silo.
        Assert.Contains($"run {run} round 1 trained and checkpointed", other.Output);
        Assert.Contains($"run {run} round 2 generate shard 0 started on this silo", other.Output);
        Log(cluster.Silos[0], run);
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run })).Rounds;
        // Round 1 evaluated twice: the lost checkpoint's evaluation wrote its marker before the kill.
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run, rounds: 2, evaluatedTwice: [1]);
        await AssertEqualsUninterruptedAsync(cluster, client, rounds);
    }

    /// <summary>
    /// Round 1's upload fails (an injected error at its first file) while round 2 generates on that checkpoint. The failure is
    /// reported as a failed upload's is, and the round's train phase runs again: a transient error is retried, a deterministic
    /// one is a counted attempt (1 of max_phase_attempts, 3), so neither fails the run. The early generation fails or is
    /// cancelled with it, nothing of round 2 is in storage when round 1 trains again, and the run ends as an uninterrupted one.
    /// </summary>
    [Theory]
    [InlineData("transient", "transient failure 1 of at most 20")]
    [InlineData("deterministic", "attempt 1 of 3")]
    [InlineData("storagefull", "disk full failure, attempt 1 of 3")] // the storage account's 507: counted, naming the disk and the checkpoint
    public async Task AnUploadThatFailsWhileTheNextRoundGeneratesOnItIsTrainedAgainAndTheRunEndsAsAnUninterruptedOne(string kind, string counted)
    {
        await using var cluster = await LocalTestCluster.StartAsync(("all", null));
        var silo = cluster.Silos[0];
        var client = cluster.Client();
        // The first file's upload throws once, after the window opened: the round's checkpoint never gets a manifest.
        cluster.Faults.Fail("train/round-1/upload", kind, 1);
        var run = await StartInTheWindowAsync(cluster, silo, client);
        var saved = await RoundZeroAsync(cluster, run);
        // The train phase asked again after the failure stops at its start: round 2 has stored nothing by then.
        cluster.Faults.Hold("train/round-1/start");
        cluster.Faults.Release(Window);
        await cluster.Faults.WaitUntilReachedAsync("train/round-1/start", TimeSpan.FromMinutes(6));
        Assert.Equal(1, cluster.Faults.Hits("train/round-1/upload"));
        Assert.Contains(kind == "storagefull" ? $"run {run} round 1 train: disk full (blob storage) while its checkpoint uploaded"
            : $"run {run} round 1: the upload of checkpoint", silo.Output);
        var failed = silo.Output.Split('\n').Single(l => l.Contains($"run {run} round 1 checkpoint attempt failed (", StringComparison.Ordinal));
        Assert.Contains(counted, failed);
        if (kind == "storagefull") Assert.Matches($@"no space left on blob storage while writing checkpoint runs/{run}/round-0001/train/\w+/manifest\.json", failed);
        // Nothing already saved is lost: round 0's checkpoint blobs are those it had before the failed upload.
        Assert.Equal(saved, await RoundZeroAsync(cluster, run));
        Assert.Equal(0, (await client.GetRunAsync(new GetRunRequest { RunId = run })).CommittedRounds);
        Assert.Empty(await RunProbe.BlobsAsync(cluster, $"runs/{run}/round-0002/"));
        cluster.Faults.Release("train/round-1/start");
        await RunProbe.WaitForAsync(client, run, r => r.Status == "completed", TimeSpan.FromMinutes(6));

        Log(silo, run);
        Assert.Equal(2, Occurrences(silo.Output, $"run {run} round 1 trained and checkpointed"));
        // The upload's failure is not told again as round 2's generation failing (it had not started).
        Assert.DoesNotContain($"run {run} round 2 generate failed", silo.Output, StringComparison.Ordinal);
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run })).Rounds;
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run, rounds: 2, evaluatedTwice: [1]);
        await AssertEqualsUninterruptedAsync(cluster, client, rounds);
    }

    /// <summary>
    /// The run paused while round 2 generates early on round 1's held upload: the early generation is dropped and stores
    /// nothing, the upload (not cancelled with the pause: a finished checkpoint is not thrown away) becomes durable once
    /// released, yet commits nothing while the run is paused. Resumed, the run takes round 1's checkpoint from the worker
    /// (trained once), generates round 2 again and ends as an uninterrupted one.
    /// </summary>
    [Fact]
    public async Task APauseInTheWindowDropsTheEarlyGenerationAndTheResumedRunEndsAsAnUninterruptedOne()
    {
        await using var cluster = await LocalTestCluster.StartAsync(("all", null));
        var silo = cluster.Silos[0];
        var client = cluster.Client();
        var run = await StartInTheWindowAsync(cluster, silo, client);
        Assert.Equal("paused", (await client.PauseRunAsync(new RunRef { RunId = run })).Status);
        await silo.WaitForOutputAsync($"run {run}: round 2's generation shard 0 started early is dropped: the run is paused or cancelled", TimeSpan.FromMinutes(2));
        await silo.WaitForOutputAsync($"run {run} round 2 generate cancelled", TimeSpan.FromMinutes(2));
        cluster.Faults.Release(Window);
        await silo.WaitForOutputAsync($"run {run} round 1: checkpoint runs/{run}/round-0001/", TimeSpan.FromMinutes(2));
        Assert.Matches($@"run {run} round 1: checkpoint \S+ uploaded behind the phases after training", silo.Output);
        var paused = await client.GetRunAsync(new GetRunRequest { RunId = run });
        Assert.Equal(("paused", 0), (paused.Status, paused.CommittedRounds));
        Assert.Empty(await RunProbe.BlobsAsync(cluster, $"runs/{run}/round-0002/"));

        Assert.Equal("running", (await client.ResumeRunAsync(new RunRef { RunId = run })).Status);
        await RunProbe.WaitForAsync(client, run, r => r.Status == "completed", TimeSpan.FromMinutes(6));
        Log(silo, run);
        Assert.Equal(1, Occurrences(silo.Output, $"run {run} round 1 trained and checkpointed"));
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run })).Rounds;
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run, rounds: 2);
        await AssertEqualsUninterruptedAsync(cluster, client, rounds);
    }

    /// <summary>Starts the spec with round 1's upload held, and returns once round 2's generation waits for it on <paramref name="worker"/>.</summary>
    private static async Task<string> StartInTheWindowAsync(LocalTestCluster cluster, SiloProcess worker, Runs.RunsClient client)
    {
        cluster.Faults.Hold(Window);
        var run = (await client.StartRunAsync(new StartRunRequest { Spec = Spec() })).Id;
        await cluster.Faults.WaitUntilReachedAsync(Window, TimeSpan.FromMinutes(6));
        await InTheWindowAsync(cluster, worker, client, run);
        return run;
    }

    /// <summary>
    /// Round 2's generation shard 0 has run on round 1's checkpoint and waits for its upload before it stores anything:
    /// round 1 is not committed and round 2 has no blob.
    /// </summary>
    private static async Task InTheWindowAsync(LocalTestCluster cluster, SiloProcess worker, Runs.RunsClient client, string run)
    {
        await worker.WaitForOutputAsync($"run {run} round 2 generate shard 0 started on this silo", TimeSpan.FromMinutes(6));
        await worker.WaitForOutputAsync($"run {run}: a generation on checkpoint", TimeSpan.FromMinutes(6));
        Assert.Equal(0, (await client.GetRunAsync(new GetRunRequest { RunId = run })).CommittedRounds);
        Assert.Empty(await RunProbe.BlobsAsync(cluster, $"runs/{run}/round-0002/"));
    }

    /// <summary>Round 0's blobs, each with its ETag (a rewritten blob gets a new one).</summary>
    private static async Task<SortedDictionary<string, string>> RoundZeroAsync(LocalTestCluster cluster, string run)
    {
        var blobs = new SortedDictionary<string, string>(StringComparer.Ordinal);
        await foreach (var blob in RunProbe.Container(cluster).GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None,
                           Azure.Storage.Blobs.Models.BlobStates.None, $"runs/{run}/round-0000/", CancellationToken.None))
            blobs[blob.Name] = blob.Properties.ETag.ToString() ?? "";
        Assert.Contains(blobs.Keys, b => b.EndsWith("manifest.json", StringComparison.Ordinal));
        return blobs;
    }

    /// <summary>What the uninterrupted run of <see cref="Spec"/> left: every round's checkpoint files (sha256) and comparable metrics.</summary>
    private sealed record Uninterrupted(List<SortedDictionary<string, string>> Files, List<SortedDictionary<string, double>> Metrics);

    /// <summary>Made by the first case that needs it, on its own cluster after its faulted run: each further case costs only that run.</summary>
    private static Uninterrupted? _uninterrupted;

    private async Task AssertEqualsUninterruptedAsync(LocalTestCluster cluster, Runs.RunsClient client,
        Google.Protobuf.Collections.RepeatedField<RoundMetrics> rounds)
    {
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        if (_uninterrupted is not { } want)
        {
            var (_, uninterrupted) = await RunProbe.CompletedRunAsync(client, Spec(), TimeSpan.FromMinutes(6));
            var files = new List<SortedDictionary<string, string>>();
            foreach (var round in uninterrupted) files.Add(await RunProbe.CheckpointFilesAsync(cluster, round.Checkpoint));
            _uninterrupted = want = new Uninterrupted(files, [.. uninterrupted.Select(r => RunProbe.Comparable(r.Metrics))]);
            output.WriteLine("this case ran the uninterrupted run the others share");
        }
        Assert.Equal(want.Files.Count, rounds.Count);
        for (int i = 0; i < rounds.Count; i++)
        {
            Assert.Equal(want.Files[i], await RunProbe.CheckpointFilesAsync(cluster, rounds[i].Checkpoint));
            Assert.Equal(want.Metrics[i], RunProbe.Comparable(rounds[i].Metrics));
        }
    }

    /// <summary>What the orchestrator said about the window (kept in the test's output: which way each race went).</summary>
    private void Log(SiloProcess silo, string run)
    {
        foreach (var line in silo.Output.Split('\n'))
            if (line.Contains(run, StringComparison.Ordinal) && (line.Contains("round ", StringComparison.Ordinal) || line.Contains("stops:", StringComparison.Ordinal))
                && (line.Contains("lost", StringComparison.Ordinal) || line.Contains("fail", StringComparison.Ordinal) || line.Contains("dropped", StringComparison.Ordinal)
                    || line.Contains("starts while", StringComparison.Ordinal) || line.Contains("taken from", StringComparison.Ordinal)
                    || line.Contains("stops", StringComparison.Ordinal)))
                output.WriteLine(line.Length > 300 ? line[..300] : line);
    }

    private static int Occurrences(string text, string line)
    {
        int count = 0;
        for (int at = text.IndexOf(line, StringComparison.Ordinal); at >= 0; at = text.IndexOf(line, at + line.Length, StringComparison.Ordinal)) count++;
        return count;
    }
}
