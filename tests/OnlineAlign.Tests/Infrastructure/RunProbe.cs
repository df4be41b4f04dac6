using Azure.Storage.Blobs;
using Grpc.Core;
using OnlineAlign.Api.V1;

namespace OnlineAlign.Tests.Infrastructure;

/// <summary>Watching a run from a test: waiting for states and phases, and reading what it left in storage.</summary>
public static class RunProbe
{
    /// <summary>
    /// Follows the run's WatchRun stream until a state it reports satisfies the condition: every state the run goes
    /// through is seen as it happens, none sampled or missed. A stream that breaks (silos come and go) is opened again;
    /// the stream ends when the run stops driving (paused, completed, failed, cancelled), and a run that stays stopped in
    /// another state than the one awaited is an error at once (nothing changes it without a call), as is a failed or
    /// cancelled run. The timeout only bounds a test that went wrong.
    /// </summary>
    public static async Task<Run> WaitForAsync(Runs.RunsClient client, string runId, Func<Run, bool> condition, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        Run? ended = null; // the state the last stream ended in
        while (true)
        {
            Run? last = null;
            try
            {
                using var watch = client.WatchRun(new WatchRunRequest { RunId = runId }, cancellationToken: deadline.Token);
                while (await watch.ResponseStream.MoveNext(deadline.Token))
                {
                    if (watch.ResponseStream.Current.Run is not { } run) continue;
                    if (condition(run))
                    {
                        if (run.Status is not ("running" or "waiting_for_gpu")) await SettledAsync(client, runId);
                        return run;
                    }
                    if (run.Status is "failed" or "cancelled") throw new InvalidOperationException($"run {run.Status}: {run.Error}");
                    if (ended is not null && run.StateVersion == ended.StateVersion && run.Status == ended.Status)
                        throw new InvalidOperationException($"run {runId} is {run.Status} (state version {run.StateVersion}), not the state awaited, and nothing changes it: {run.Error}");
                    last = run;
                }
                if (last is null) await Task.Delay(250); // a stream with no state at all: not seen, but never a busy loop
                ended = last;
            }
            catch (RpcException) when (!deadline.IsCancellationRequested)
            {
                await Task.Delay(250); // a silo going or coming: reconnect (a retry, not a sample of the run's state)
            }
            catch (Exception e) when (deadline.IsCancellationRequested && e is RpcException or OperationCanceledException)
            {
                throw new TimeoutException($"run {runId} did not reach the expected state in {timeout} (last seen: {Describe(last ?? ended)}; asked now: {await NowAsync(client, runId)})");
            }
        }
    }

    /// <summary>
    /// A run as a timeout reports it: its state, the round and phase it was in and its error (a run that retries after
    /// transient failures says why there), so that a CI log alone says where a run stood.
    /// </summary>
    private static string Describe(Run? run) => run is null ? "nothing"
        : $"{run.Status}, round {run.Round} {run.Phase}, {run.CommittedRounds} rounds committed, state version {run.StateVersion}" +
          (string.IsNullOrEmpty(run.Error) ? "" : $", error: {run.Error}");

    /// <summary>The run's state asked once more (a watch reports a state only when its status or error changes).</summary>
    private static async Task<string> NowAsync(Runs.RunsClient client, string runId)
    {
        try { return Describe(await client.GetRunAsync(new GetRunRequest { RunId = runId }, deadline: DateTime.UtcNow.AddSeconds(15))); }
        catch (RpcException e) { return $"GetRun failed: {e.Status.StatusCode} {e.Status.Detail}"; }
    }

    /// <summary>
    /// Returns once the transition that stopped the run has done all its work: WatchRun reports a state as soon as it is
    /// persisted, and the transition then removes the run's reminder and gives its place among the runs in progress
    /// back. A Pause call takes the same transition gate, so its answer (FAILED_PRECONDITION: a stopped run cannot be
    /// paused) comes only after that transition let go of it.
    /// </summary>
    public static async Task SettledAsync(Runs.RunsClient client, string runId)
    {
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.PauseRunAsync(new RunRef { RunId = runId }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
    }

    /// <summary>Rows of Orleans' reminder table that belong to the run (a driving run has one; a stopped run none).</summary>
    public static async Task<int> ReminderRowsAsync(LocalTestCluster cluster, string runId)
    {
        var table = new Azure.Data.Tables.TableServiceClient(cluster.Azurite.ConnectionString).GetTableClient("OrleansReminders");
        int rows = 0;
        try
        {
            await foreach (var entity in table.QueryAsync<Azure.Data.Tables.TableEntity>())
                if (entity.Any(kv => kv.Value is string s && s.Contains(runId, StringComparison.Ordinal)))
                    rows++;
        }
        catch (Azure.RequestFailedException e) when (e.Status == 404) { } // no reminder was ever registered
        return rows;
    }

    /// <summary>Waits until the run has that many reminder rows (the timeout only bounds a test that went wrong).</summary>
    public static async Task WaitForReminderRowsAsync(LocalTestCluster cluster, string runId, int rows, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        int seen;
        while ((seen = await ReminderRowsAsync(cluster, runId)) != rows)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"run {runId} has {seen} reminder rows, not {rows}, after {timeout}");
            await Task.Delay(200);
        }
    }

    public static BlobContainerClient Container(LocalTestCluster cluster) =>
        new BlobServiceClient(cluster.Azurite.ConnectionString).GetBlobContainerClient("onlinealign");

    public static async Task<List<string>> BlobsAsync(LocalTestCluster cluster, string prefix)
    {
        var names = new List<string>();
        await foreach (var blob in Container(cluster).GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, prefix, CancellationToken.None))
            names.Add(blob.Name);
        return names;
    }

    /// <summary>The sha256 of model.safetensors as recorded in a checkpoint manifest.</summary>
    public static async Task<string> WeightsSha256(LocalTestCluster cluster, string manifestPath)
    {
        var manifest = System.Text.Json.Nodes.JsonNode.Parse((await Container(cluster).GetBlobClient(manifestPath).DownloadContentAsync()).Value.Content.ToString())!;
        // A LoRA run's checkpoints after round 0 hold the adapter's weights instead of the model's.
        var files = manifest["files"]!.AsArray();
        var weights = files.FirstOrDefault(f => f!["path"]!.GetValue<string>().EndsWith("/adapter_model.safetensors", StringComparison.Ordinal))
            ?? files.Single(f => f!["path"]!.GetValue<string>().EndsWith("/model.safetensors", StringComparison.Ordinal));
        return weights!["sha256"]!.GetValue<string>();
    }

    /// <summary>A checkpoint's files by name, with their sha256 as its manifest records them.</summary>
    public static async Task<SortedDictionary<string, string>> CheckpointFilesAsync(LocalTestCluster cluster, string manifestPath)
    {
        var manifest = System.Text.Json.Nodes.JsonNode.Parse((await Container(cluster).GetBlobClient(manifestPath).DownloadContentAsync()).Value.Content.ToString())!;
        return new(manifest["files"]!.AsArray().ToDictionary(f => f!["path"]!.GetValue<string>().Split('/')[^1], f => f!["sha256"]!.GetValue<string>()),
            StringComparer.Ordinal);
    }

    /// <summary>
    /// Every phase of every committed round finished exactly once: one "done" marker per phase (per shard
    /// for generation) and one finished output each (a checkpoint counts once its manifest exists).
    /// </summary>
    /// <param name="evaluatedTwice">rounds whose trained checkpoint was lost while it uploaded behind the evaluation (a kill):
    /// evaluated once more, from the checkpoint trained again</param>
    /// <param name="shardsByRound">each round's generation shards (round 1 first), where they differ between rounds; else <paramref name="shards"/></param>
    public static async Task AssertEachPhaseDoneOnceAsync(LocalTestCluster cluster, string runId, int rounds, int shards = 1, int[]? evaluatedTwice = null,
        int[]? shardsByRound = null)
    {
        var blobs = await BlobsAsync(cluster, $"runs/{runId}/");
        for (int round = 1; round <= rounds; round++)
        {
            string prefix = $"runs/{runId}/round-{round:D4}/";
            int evaluations = evaluatedTwice?.Contains(round) == true ? 2 : 1;
            int generated = shardsByRound?[round - 1] ?? shards;
            foreach (var (phase, expected, output) in new[] { ("generate", generated, "/shard-"), ("judge", 1, "/scores.json"), ("pairs", 1, "/pairs.json"), ("train", 1, "/manifest.json"), ("evaluate", evaluations, "/metrics.json") })
            {
                Assert.True(expected == blobs.Count(b => b.StartsWith(prefix + phase + "/done-", StringComparison.Ordinal)), $"round {round} {phase}: {blobs.Count(b => b.StartsWith(prefix + phase + "/done-", StringComparison.Ordinal))} done markers");
                Assert.True(expected == blobs.Count(b => b.StartsWith(prefix + phase + "/", StringComparison.Ordinal) && b.Contains(output)), $"round {round} {phase}: {blobs.Count(b => b.StartsWith(prefix + phase + "/", StringComparison.Ordinal) && b.Contains(output))} outputs");
            }
        }
    }

    /// <summary>
    /// Each round's generation shards, as the round reported them (round 1 first), for <see cref="AssertEachPhaseDoneOnceAsync"/>
    /// in a run whose replica count changed with a GPU silo's death or return (with replicas 0, a round counts the silos the
    /// run's silo lists when it starts: one that starts while a silo is dead, or not yet listed again, has fewer).
    /// </summary>
    public static int[] GenerationShards(IEnumerable<RoundMetrics> rounds) =>
        rounds.Select(r => (int)r.Metrics.GetValueOrDefault("shards/generate/count", 1)).ToArray();

    /// <summary>Runs <paramref name="spec"/> to completion: its id and committed rounds (an uninterrupted reference run).</summary>
    public static async Task<(string Id, IReadOnlyList<RoundMetrics> Rounds)> CompletedRunAsync(Runs.RunsClient client, RunSpec spec, TimeSpan timeout)
    {
        var run = await client.StartRunAsync(new StartRunRequest { Spec = spec });
        await WaitForAsync(client, run.Id, r => r.Status == "completed", timeout);
        return (run.Id, (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds);
    }

    /// <summary>The same rounds, each with the same checkpoint (every file's sha256) and every <see cref="Comparable"/> metric equal.</summary>
    public static async Task AssertSameRoundsAsync(LocalTestCluster cluster, IReadOnlyList<RoundMetrics> expected, IReadOnlyList<RoundMetrics> actual)
    {
        Assert.Equal(expected.Select(r => r.Round), actual.Select(r => r.Round));
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(await CheckpointFilesAsync(cluster, expected[i].Checkpoint), await CheckpointFilesAsync(cluster, actual[i].Checkpoint));
            Assert.Equal(Comparable(expected[i].Metrics), Comparable(actual[i].Metrics));
        }
    }

    /// <summary>
    /// The same rounds, each with the same checkpoint (every file's sha256) and every <see cref="ComparableAcrossReplicaCounts"/>
    /// metric equal: a run that lost a silo (and so later rounds' replicas) against an uninterrupted one.
    /// </summary>
    public static async Task AssertSameRoundsAcrossReplicaCountsAsync(LocalTestCluster cluster, IReadOnlyList<RoundMetrics> expected,
        IReadOnlyList<RoundMetrics> actual)
    {
        Assert.Equal(expected.Select(r => r.Round), actual.Select(r => r.Round));
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(await CheckpointFilesAsync(cluster, expected[i].Checkpoint), await CheckpointFilesAsync(cluster, actual[i].Checkpoint));
            Assert.Equal(ComparableAcrossReplicaCounts(expected[i].Metrics), ComparableAcrossReplicaCounts(actual[i].Metrics));
        }
    }

    /// <summary>The index of the silo that logged <paramref name="line"/>, once one has (polled: the line is awaited, not timed).</summary>
    public static async Task<int> SiloSayingAsync(LocalTestCluster cluster, string line)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(8);
        while (true)
        {
            int silo = cluster.Silos.FindIndex(s => s.Output.Contains(line, StringComparison.Ordinal));
            if (silo >= 0) return silo;
            Assert.True(DateTime.UtcNow < deadline, $"no silo said \"{line}\" within 8 minutes");
            await Task.Delay(250);
        }
    }

    /// <summary>Every metric but wall times and those made of them (tokens/s, stragglers, *_seconds such as the upload's).</summary>
    public static SortedDictionary<string, double> Comparable(IDictionary<string, double> metrics) =>
        new(metrics.Where(kv => !kv.Key.StartsWith("time/", StringComparison.Ordinal)
                                && !kv.Key.EndsWith("_seconds", StringComparison.Ordinal)
                                && !kv.Key.EndsWith("/tokens_per_second", StringComparison.Ordinal)
                                && !kv.Key.EndsWith("/slowest_over_mean", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal);

    /// <summary>
    /// <see cref="Comparable"/> less the shard counts and token counts per silo (shards/*): what must equal between runs
    /// of the same spec on different replica counts.
    /// </summary>
    public static SortedDictionary<string, double> ComparableAcrossReplicaCounts(IDictionary<string, double> metrics) =>
        new(Comparable(metrics).Where(kv => !kv.Key.StartsWith("shards/", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal);

    /// <summary>The hash under which the worker kept a round's trained model, from its log line naming the round's checkpoint.</summary>
    internal static string KeptAs(string log, string runId, RoundMetrics round)
    {
        var kept = System.Text.RegularExpressions.Regex.Match(log,
            $@"run {runId} round {round.Round}: trained model kept in memory as checkpoint {System.Text.RegularExpressions.Regex.Escape(round.Checkpoint)} \((\w+)\)");
        Assert.True(kept.Success, $"no line: run {runId} round {round.Round}: trained model kept in memory as checkpoint {round.Checkpoint}");
        return kept.Groups[1].Value;
    }
}
