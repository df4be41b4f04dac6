using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Cluster;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Reliability;

/// <summary>
/// Replicas that come and go under a sharded run: a silo killed inside its judge, pairs (reference log-probs) or evaluation
/// shard has the shard redone on a live silo (the round keeps its shard cut, so the run equals an uninterrupted one bit
/// for bit); a silo killed inside a data-parallel train step's gradient exchange has the train phase redone (no step
/// half-applied); a silo killed while it holds the GPU ledger loses no placement; and a GPU silo that joins between rounds
/// takes a share of the next round.
/// </summary>
[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class ShardFaultTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>The spec of the shard and ledger kill cases (full fine-tuning, 2 replicas; 32 evaluation prompts: 2 evaluation shards).</summary>
    private static RunSpec TwoReplicas()
    {
        var spec = LocalTestCluster.SmallSpec(rounds: 2);
        spec.GenerationReplicas = 2;
        return spec;
    }

    /// <summary>
    /// The spec of the data-parallel kill cases: DataParallelTrainingClusterTests' LoRA run on 2 replicas (4 micro-batches a
    /// step, AdamW moments carried). As a shard case's spec it once had the live replica's shard computed again after the
    /// kill: the run grain, activated again, read its spec back from storage with the default target modules, so the done
    /// marker's key differed (RunStateJson, SpecKeyRoundTripTests); the judge case with replica 0 killed runs it too (it
    /// passes without that fix as well: its run grain is not activated again, so SpecKeyRoundTripTests is the fix's test).
    /// </summary>
    private static RunSpec DataParallel() => DataParallelTrainingClusterTests.LoraSpec(replicas: 2);

    /// <param name="phase">the sharded phase whose round-2 shard is held: judge, pairs (the reference log-probs) or evaluate</param>
    /// <param name="shard">1: replica 1's silo dies (replica 0, which merges and trains, lives on); 0: replica 0's silo dies</param>
    /// <param name="lora">the LoRA data-parallel spec (<see cref="DataParallel"/>) instead of full fine-tuning</param>
    [Theory]
    [InlineData("judge", 1, false)]
    [InlineData("judge", 0, false)]
    [InlineData("judge", 0, true)]
    [InlineData("pairs", 1, false)]
    [InlineData("evaluate", 0, false)]
    public async Task ASiloKilledInsideItsShardHasTheShardRedoneOnceAndTheRunEqualsAnUninterruptedOne(string phase, int shard, bool lora)
    {
        // One replica's shard of round 2 stops on its silo; the other replica's shard runs on the other GPU silo.
        string held = $"{phase}-shard/round-2/shard-{shard}";
        var spec = lora ? DataParallel() : TwoReplicas();
        var (cluster, run, victim, survivor) = await HeldOnAGpuSiloAsync(spec, held, TimeSpan.FromMinutes(6));
        await using var _ = cluster;
        var client = cluster.Client(0);
        // The console logger writes from its own queue: wait for the line rather than expect it already read.
        await cluster.Silos[victim].WaitForOutputAsync($"run {run.Id} round 2 {phase} shard {shard} started", TimeSpan.FromMinutes(1));
        await cluster.Silos[survivor].WaitForOutputAsync($"run {run.Id} round 2 {phase} shard {1 - shard} started", TimeSpan.FromMinutes(2));
        // The other shard finishes first (its done marker is written): asked again after the kill (the phase is retried
        // whole), it answers from the marker under the same key.
        await DoneMarkersAsync(cluster, $"runs/{run.Id}/round-0002/{phase}-shard/", 1);
        cluster.Silos[victim].Kill();
        cluster.Faults.Release(held);

        // The round keeps the 2 replicas it started with: the lost one is placed again, on the one GPU silo left, beside
        // the other (replica 0 lost: the run's worker, which merges and trains, is placed there too).
        await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));
        await cluster.Silos[survivor].WaitForOutputAsync($"run {run.Id} round 2 {phase} shard {shard} started", TimeSpan.FromMinutes(1));
        await cluster.Silos[survivor].WaitForOutputAsync($"run {run.Id} round 2 done", TimeSpan.FromMinutes(1));
        await cluster.Silos[survivor].WaitForOutputAsync($"run {run.Id} round 2 {phase}-shard: already done", TimeSpan.FromMinutes(1));
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 2, shards: 2);
        await AssertEachShardCountedOnceAsync(cluster, run.Id, phase, rounds[1]);
        await AssertEqualsUninterruptedAsync(cluster, client, spec, rounds);
    }

    /// <summary>
    /// kill -9 inside a data-parallel train step's exchange, in the state where step 0 of round 2 is applied on replica 0
    /// and not yet on replica 1 (fault point train-exchange/round-2/step-0/replica-K): the whole train phase is redone from
    /// the round's inputs (no step half-applied, none applied twice), and every checkpoint file (adapter, AdamW moments,
    /// per-step metrics) equals an uninterrupted data-parallel run's.
    /// </summary>
    /// <param name="replica">1: replica 1's silo dies with the sum received and not applied; 0: the coordinator's silo dies
    /// after applying the sum, before sending it</param>
    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    public async Task ASiloKilledInsideADataParallelStepsExchangeHasTheStepRedoneAndTheRunEqualsAnUninterruptedOne(int replica)
    {
        string held = $"train-exchange/round-2/step-0/replica-{replica}";
        var (cluster, run, victim, survivor) = await HeldOnAGpuSiloAsync(DataParallel(), held, TimeSpan.FromMinutes(8));
        await using var _ = cluster;
        var client = cluster.Client(0);
        string replicaOneLine = $"run {run.Id} round 2 train replica 1 of 2 started";
        await cluster.Silos[replica == 1 ? victim : survivor].WaitForOutputAsync(replicaOneLine, TimeSpan.FromMinutes(1));
        cluster.Silos[victim].Kill();
        cluster.Faults.Release(held);

        await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));
        await cluster.Silos[survivor].WaitForOutputAsync($"run {run.Id} round 2 done", TimeSpan.FromMinutes(1));
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        // Redone, data-parallel again: replica 1 opened a second session for round 2 (on the silo left), and round 2 was
        // trained to the end once, there; one done marker and one checkpoint for the train phase.
        Assert.True(Occurrences(cluster.Silos[survivor].Output, replicaOneLine) >= (replica == 1 ? 1 : 2), cluster.Silos[survivor].Output);
        Assert.Equal(1, cluster.Silos.Sum(s => Occurrences(s.Output, $"run {run.Id} round 2 trained on 2 replicas")));
        Assert.Contains($"run {run.Id} round 2 trained on 2 replicas", cluster.Silos[survivor].Output);
        Assert.Contains("time/exchange", rounds[1].Metrics.Keys);
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 2, shards: 2);
        await AssertEachShardCountedOnceAsync(cluster, run.Id, "judge", rounds[1]);
        await AssertEqualsUninterruptedAsync(cluster, client, DataParallel(), rounds);
    }

    /// <summary>
    /// kill -9 of the silo that holds the GPU ledger (GpuLedgerGrain) while a run is placed: the ledger comes back on a live
    /// silo from its persisted state (it still knows the run's placement), the run's next placement names 2 live silos
    /// (not lost, not doubled), the run completes equal to an uninterrupted one, and its placement is released at the end.
    /// Which silo holds the ledger is Orleans' choice: the test kills that one, whichever it is (control or GPU).
    /// </summary>
    [Fact]
    public async Task ASiloKilledWhileItHoldsTheGpuLedgerLosesNoPlacementAndTheRunEqualsAnUninterruptedOne()
    {
        await using var cluster = await TwoGpuSilosAsync();
        // Round 1's pairs merge (the run placed, its workers busy) and round 2's evaluation merge (placed again after the kill).
        const string first = "pairs/round-1/start", second = "evaluate/round-2/start";
        cluster.Faults.Hold(first);
        cluster.Faults.Hold(second);
        var run = await cluster.Client(0).StartRunAsync(new StartRunRequest { Spec = TwoReplicas() });
        await cluster.Faults.WaitUntilReachedAsync(first, TimeSpan.FromMinutes(6));
        var placed = await LedgerAsync(cluster);
        Assert.Equal(2, placed[run.Id].Count);
        Assert.Equal(GpuSiloPorts(cluster, 1, 2), placed[run.Id].Order());   // one replica on each GPU silo
        const string active = "GPU ledger active on this silo";
        var holders = cluster.Silos.Select((s, i) => (s, i)).Where(x => x.s.Output.Contains(active, StringComparison.Ordinal)).Select(x => x.i).ToList();
        int victim = Assert.Single(holders);
        output.WriteLine($"the GPU ledger was on silo {victim} ({(victim == 0 ? "control" : "GPU")}): killed");
        var client = cluster.Client(victim == 0 ? 1 : 0);
        cluster.Silos[victim].Kill();
        cluster.Faults.Release(first);
        // Watching keeps the run's orchestrator active (an API call reactivates it at once if it lived on the dead silo).
        var completed = RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(10));

        // Round 2 started after the kill, so its placement came from a new ledger activation that read the old one's state.
        await cluster.Faults.WaitUntilReachedAsync(second, TimeSpan.FromMinutes(6));
        var live = Enumerable.Range(0, 3).Where(i => i != victim).ToList();
        string reread = $"{active} with 1 placements: {run.Id} (2 replicas)";
        for (var deadline = DateTime.UtcNow.AddMinutes(1); !live.Any(i => cluster.Silos[i].Output.Contains(reread, StringComparison.Ordinal));)
        {
            Assert.True(DateTime.UtcNow < deadline, $"no live silo logged '{reread}'");
            await Task.Delay(100);
        }
        var replaced = await LedgerAsync(cluster);
        Assert.Equal([run.Id], replaced.Keys);
        Assert.Equal(2, replaced[run.Id].Count);
        Assert.All(replaced[run.Id], port => Assert.Contains(port, GpuSiloPorts(cluster, live.Where(i => i > 0).ToArray())));
        cluster.Faults.Release(second);

        await completed;
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 2, shards: 2);
        await AssertEachShardCountedOnceAsync(cluster, run.Id, "judge", rounds[1]);
        Assert.DoesNotContain(run.Id, (await LedgerAsync(cluster)).Keys);   // released once the run stopped driving
        await AssertEqualsUninterruptedAsync(cluster, client, TwoReplicas(), rounds);
    }

    /// <summary>
    /// Each shard of a round's sharded phase counted once: one finished output and one done marker per shard, and the
    /// merge (which refuses an item missing or seen twice) took two.
    /// </summary>
    private static async Task AssertEachShardCountedOnceAsync(LocalTestCluster cluster, string runId, string phase, RoundMetrics round)
    {
        var shards = await RunProbe.BlobsAsync(cluster, $"runs/{runId}/round-{round.Round:D4}/{phase}-shard/");
        Assert.Equal(1, shards.Count(b => b.EndsWith("/shard-0.json", StringComparison.Ordinal)));
        Assert.Equal(1, shards.Count(b => b.EndsWith("/shard-1.json", StringComparison.Ordinal)));
        Assert.Equal(2, shards.Count(b => b.Contains("/done-", StringComparison.Ordinal)));
        Assert.Equal(2, round.Metrics[$"shards/{phase}/count"]);
    }

    /// <summary>What an uninterrupted run of a spec left: every round's checkpoint files (sha256) and comparable metrics.</summary>
    private sealed record Uninterrupted(List<SortedDictionary<string, string>> Files, List<SortedDictionary<string, double>> Metrics);

    /// <summary>
    /// One uninterrupted run per spec for the whole class, made by the first test that needs it on its own cluster (after
    /// its fault; results do not depend on the silos a run's replicas sit on): each further case costs only its faulted run.
    /// </summary>
    private static readonly Dictionary<string, Uninterrupted> UninterruptedRuns = new(StringComparer.Ordinal);

    /// <summary>Every round's checkpoint (every file's sha256) and every metric (but wall times) equal the same spec run without interruption.</summary>
    private async Task AssertEqualsUninterruptedAsync(LocalTestCluster cluster, Runs.RunsClient client, RunSpec spec,
        Google.Protobuf.Collections.RepeatedField<RoundMetrics> rounds)
    {
        string key = spec.ToString();
        if (!UninterruptedRuns.TryGetValue(key, out var want))
        {
            var again = await client.StartRunAsync(new StartRunRequest { Spec = spec });
            await RunProbe.WaitForAsync(client, again.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));
            var uninterrupted = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = again.Id })).Rounds;
            Assert.Equal(rounds.Select(r => r.Round), uninterrupted.Select(r => r.Round));
            var files = new List<SortedDictionary<string, string>>();
            foreach (var round in uninterrupted) files.Add(await RunProbe.CheckpointFilesAsync(cluster, round.Checkpoint));
            UninterruptedRuns[key] = want = new Uninterrupted(files, uninterrupted.Select(r => RunProbe.Comparable(r.Metrics)).ToList());
            output.WriteLine("this case ran the uninterrupted run the others share");
        }
        Assert.Equal(want.Files.Count, rounds.Count);
        for (int i = 0; i < rounds.Count; i++)
        {
            Assert.Equal(want.Files[i], await RunProbe.CheckpointFilesAsync(cluster, rounds[i].Checkpoint));
            Assert.Equal(want.Metrics[i], RunProbe.Comparable(rounds[i].Metrics));
        }
    }

    /// <summary>
    /// The GPU ledger's persisted state, read from Orleans' grain storage: each run's replicas' silo ports (replica k's
    /// at k). A run placed twice would show more ports than replicas; a lost placement, no entry.
    /// </summary>
    private static async Task<Dictionary<string, List<int>>> LedgerAsync(LocalTestCluster cluster)
    {
        var container = new Azure.Storage.Blobs.BlobServiceClient(cluster.Azurite.ConnectionString).GetBlobContainerClient("grainstate");
        var names = new List<string>();
        await foreach (var blob in container.GetBlobsAsync())
            if (blob.Name.Contains("ledger", StringComparison.OrdinalIgnoreCase)) names.Add(blob.Name);
        string name = Assert.Single(names);
        var json = System.Text.Json.Nodes.JsonNode.Parse((await container.GetBlobClient(name).DownloadContentAsync()).Value.Content.ToString())!;
        var ledger = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        foreach (var (run, placement) in json.AsObject().Where(kv => !kv.Key.StartsWith('$')))
        {
            var silos = placement!["Silos"] ?? placement["silos"];
            var values = silos is System.Text.Json.Nodes.JsonArray array ? array : silos!["$values"]!.AsArray();
            // "127.0.0.1:11112@123456789": the silo port between ':' and '@'.
            ledger[run] = values.Select(v => int.Parse(v!.GetValue<string>().Split('@')[0].Split(':')[^1], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        }
        return ledger;
    }

    /// <summary>
    /// The run's 2 replicas placed on the 2 GPU silos by the ledger, and working there (each silo logged round 1 work):
    /// what the kill cases need, checked so that a failure says which of the two did not hold.
    /// </summary>
    private async Task AssertPlacedOnBothGpuSilosAsync(LocalTestCluster cluster, string runId)
    {
        var work = cluster.Silos.Select(s => Occurrences(s.Output, $"run {runId} round 1 ")).ToList();
        output.WriteLine($"round 1 log lines of the run by silo (control, gpu, gpu): {string.Join(", ", work)}");
        Assert.Equal(GpuSiloPorts(cluster, 1, 2), (await LedgerAsync(cluster))[runId].Order());
        Assert.True(work[1] > 0 && work[2] > 0, $"the ledger placed the run on both GPU silos, yet its round 1 ran on: {string.Join(", ", work)}");
    }

    /// <summary>Waits until the folder holds the count of done markers (the timeout bounds a test gone wrong).</summary>
    private static async Task DoneMarkersAsync(LocalTestCluster cluster, string folder, int count)
    {
        for (var deadline = DateTime.UtcNow.AddMinutes(3); (await RunProbe.BlobsAsync(cluster, folder)).Count(b => b.Contains("/done-", StringComparison.Ordinal)) < count;)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{folder} never held {count} done markers");
            await Task.Delay(250);
        }
    }

    private static List<int> GpuSiloPorts(LocalTestCluster cluster, params int[] silos) => silos.Select(i => cluster.Silos[i].SiloPort).Order().ToList();

    private static int Occurrences(string text, string line)
    {
        int count = 0;
        for (int at = text.IndexOf(line, StringComparison.Ordinal); at >= 0; at = text.IndexOf(line, at + line.Length, StringComparison.Ordinal)) count++;
        return count;
    }

    [Fact]
    public async Task AGpuSiloThatJoinsBetweenRoundsTakesAShareOfTheNextRoundAndOneThatDiesIsLeftOutOfTheRoundAfter()
    {
        // One per GPU silo active when a round starts: 1, then 2 once a silo joined, then 1 again once it died.
        var (cluster, run, rounds) = await RunWithAGpuSiloJoiningAfterRound1Async(replicas: 0, joinedDiesAfterRound2: true);
        await using var _ = cluster;
        var (first, second, third) = (rounds[0].Metrics, rounds[1].Metrics, rounds[2].Metrics);
        // Round 1 ran on the one replica it started with; round 2 on two, one of them on the new silo.
        Assert.DoesNotContain("shards/judge/count", first.Keys);
        Assert.DoesNotContain("shards/evaluate/count", first.Keys);
        Assert.Equal(2, second["shards/judge/count"]);
        Assert.Equal(2, second["shards/evaluate/count"]);
        Assert.Equal(2, second["shards/generate/count"]);
        string logs = string.Concat(cluster.Silos.Select(s => s.Output));
        // On different GPU silos, the new one among them: the workers were placed again when the count changed (replica 1
        // activated on the silo the ledger named), and replica 0 kept its silo and its loaded model: nothing had to move.
        Assert.Contains($"run {run} round 2: 2 replicas (the last round had 1): its workers are placed again", logs, StringComparison.Ordinal);
        Assert.Equal([1, 2], JudgeShardSilos(cluster, run, round: 2));
        Assert.DoesNotContain($"run {run} round 2: replica 0 is on ", logs, StringComparison.Ordinal);
        Assert.DoesNotContain($"run {run} round 1 ", cluster.Silos[2].Output);
        // Round 3 on the one GPU silo left: the dead silo's replica let go, not waited for nor stacked beside replica 0. (Not
        // asked of the orchestrator's log: the silo's death may deactivate it, and an activation that has not placed a round
        // yet has no last count to compare with. Orleans deactivates the grains whose directory partition the dead silo held.)
        Assert.DoesNotContain("shards/judge/count", third.Keys);
        Assert.DoesNotContain("shards/evaluate/count", third.Keys);
        Assert.Contains($"run {run} round 3 judge started", cluster.Silos[1].Output, StringComparison.Ordinal);
        Assert.DoesNotContain($"run {run} round 3 ", cluster.Silos[2].Output);
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run, rounds: 1, shards: 1);
    }

    [Fact]
    public async Task StackedReplicasMoveToAGpuSiloThatJoinsThoughTheirCountStaysTheSame()
    {
        // An explicit count of 2 with one GPU silo known: both replicas on it (what a run started before a GPU silo's
        // metadata arrived gets). The count does not change when the second silo joins, yet replica 1 moves there.
        var (cluster, run, rounds) = await RunWithAGpuSiloJoiningAfterRound1Async(replicas: 2);
        await using var _ = cluster;
        Assert.All(rounds, r => Assert.Equal(2, r.Metrics["shards/judge/count"]));
        Assert.Equal([1, 1], JudgeShardSilos(cluster, run, round: 1));
        Assert.Equal([1, 2], JudgeShardSilos(cluster, run, round: 2));
        Assert.Contains($"run {run} round 2: replica 1 is on ", string.Concat(cluster.Silos.Select(s => s.Output)), StringComparison.Ordinal);
        Assert.DoesNotContain($"run {run} round 1 ", cluster.Silos[2].Output);
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run, rounds: 2, shards: 2);
    }

    /// <summary>
    /// A 2-round run on a control silo and one GPU silo, a second GPU silo added while round 1's evaluation is held (the
    /// last phase before round 2 starts), every silo seeing both before the run goes on; returns once it completed. With
    /// <paramref name="joinedDiesAfterRound2"/>, 3 rounds, and the joined silo is killed while round 2's evaluation is held
    /// (its shards are done), every silo seeing one GPU silo before the run goes on.
    /// </summary>
    private static async Task<(LocalTestCluster Cluster, string Run, List<RoundMetrics> Rounds)> RunWithAGpuSiloJoiningAfterRound1Async(int replicas,
        bool joinedDiesAfterRound2 = false)
    {
        var probes = LocalTestCluster.FastProbes();   // the killed silo voted dead within seconds
        var cluster = await LocalTestCluster.StartAsync(("control", probes), ("gpu", probes));
        try
        {
            var client = cluster.Client(0);
            var spec = LocalTestCluster.SmallSpec(rounds: joinedDiesAfterRound2 ? 3 : 2);
            spec.GenerationReplicas = replicas;
            const string held = "evaluate/round-1/start";   // held on replica 0 (a whole phase, or its merge after the shards)
            const string heldBeforeDeath = "evaluate/round-2/start";
            cluster.Faults.Hold(held);
            if (joinedDiesAfterRound2) cluster.Faults.Hold(heldBeforeDeath);
            var run = await client.StartRunAsync(new StartRunRequest { Spec = spec });
            await cluster.Faults.WaitUntilReachedAsync(held, TimeSpan.FromMinutes(6));
            var joined = await cluster.AddSiloAsync("gpu", probes, timeout: TimeSpan.FromMinutes(3));
            // The orchestrator and the ledger may be on either of the first two silos: wait until every silo sees the new one.
            await cluster.WaitUntilEverySiloSeesGpuSilosAsync(2);
            cluster.Faults.Release(held);
            if (joinedDiesAfterRound2)
            {
                await cluster.Faults.WaitUntilReachedAsync(heldBeforeDeath, TimeSpan.FromMinutes(6));
                joined.Kill();
                await cluster.WaitUntilEverySiloSeesGpuSilosAsync(1);
                cluster.Faults.Release(heldBeforeDeath);
            }
            await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));
            var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds.ToList();
            Assert.Equal(Enumerable.Range(1, spec.Rounds), rounds.Select(r => r.Round));
            return (cluster, run.Id, rounds);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private static List<int> JudgeShardSilos(LocalTestCluster cluster, string run, int round) => Enumerable.Range(0, 2).Select(k =>
        cluster.Silos.FindIndex(s => s.Output.Contains($"run {run} round {round} judge shard {k} started", StringComparison.Ordinal))).ToList();

    /// <summary>
    /// A run of the spec on a control silo and 2 GPU silos, held at a fault point: the index of the GPU silo that reached it
    /// (the one the case kills) and of the other, once the run's replicas are placed one on each GPU silo.
    /// </summary>
    private async Task<(LocalTestCluster Cluster, Run Run, int Victim, int Survivor)> HeldOnAGpuSiloAsync(RunSpec spec, string held,
        TimeSpan timeout)
    {
        var cluster = await TwoGpuSilosAsync();
        try
        {
            cluster.Faults.Hold(held);
            var run = await cluster.Client(0).StartRunAsync(new StartRunRequest { Spec = spec });
            await cluster.Faults.WaitUntilReachedAsync(held, timeout);
            int victim = cluster.Silos.FindIndex(s => s.ProcessId == cluster.Faults.ReachedBy(held));
            Assert.True(victim is 1 or 2, $"{held} was reached on a GPU silo");
            await AssertPlacedOnBothGpuSilosAsync(cluster, run.Id);
            return (cluster, run, victim, 3 - victim);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// A control silo and 2 GPU silos, returned once every silo sees both GPU silos with their metadata (LocalTestCluster).
    /// Each kill case waits for its victim to be voted dead by the 2 live silos before the shard, step or ledger moves: they
    /// probe every second (<see cref="LocalTestCluster.FastProbes"/>).
    /// </summary>
    private static Task<LocalTestCluster> TwoGpuSilosAsync() =>
        LocalTestCluster.StartAsync(("control", LocalTestCluster.FastProbes()), ("gpu", LocalTestCluster.FastProbes()), ("gpu", LocalTestCluster.FastProbes()));

}
