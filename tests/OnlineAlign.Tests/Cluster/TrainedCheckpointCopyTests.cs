using OnlineAlign.Api.V1;
using OnlineAlign.Grains.Workers;
using OnlineAlign.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OnlineAlign.Tests.Cluster;

/// <summary>
/// The other replicas copy a round's trained checkpoint from the trainer instead of waiting for its upload
/// (Silo:CopyTrainedCheckpoint): a full fine-tuning run on two GPU silos (trained on replica 0 alone, evaluated in two
/// shards), round 1's upload held at its fault point. Replica 1 copies the checkpoint from replica 0, file by file
/// verified, and evaluates its shard while the upload is held, so the round reaches its commit wait, where both replicas
/// generate their shards of round 2 early (replica 1 from its copy), storing nothing before the upload is durable; round 1
/// still commits only once it is, no silo reads that checkpoint from storage, and the run ends as one with the copy off.
/// </summary>
[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class TrainedCheckpointCopyTests(ITestOutputHelper output)
{
    private const string Window = "train/round-1/background-upload";

    /// <summary>What the replica that copied the trained checkpoint logs.</summary>
    private const string Copied = "copied from the replica that trained it, while it uploads";

    private static RunSpec Spec()
    {
        var spec = LocalTestCluster.SmallSpec(rounds: 2);
        spec.GenerationReplicas = 0;   // one replica per GPU silo: 2
        return spec;
    }

    [Fact]
    public async Task TheOtherReplicaEvaluatesFromACopyWhileTheUploadIsHeldAndTheRunEndsAsOneWithoutTheCopy()
    {
        await using var cluster = await LocalTestCluster.StartAsync([("control", null), ("gpu", LocalTestCluster.ReplicasNeverIdle()), ("gpu", LocalTestCluster.ReplicasNeverIdle())]);
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
        // Both shards of round 2 start early then, the copy's too, and neither stores anything before the upload is durable.
        for (int k = 0; k < 2; k++)
            await cluster.Silos[0].WaitForOutputAsync($"run {run} round 1: round 2's generation (shard {k}) starts while checkpoint", TimeSpan.FromMinutes(8));
        await cluster.Silos[await RunProbe.SiloSayingAsync(cluster, Copied)].WaitForOutputAsync(
            "copied from the trainer, waits for its upload on replica 0 before storing its responses", TimeSpan.FromMinutes(8));
        Assert.Equal(0, (await client.GetRunAsync(new GetRunRequest { RunId = run })).CommittedRounds);
        Assert.Empty(await RunProbe.BlobsAsync(cluster, $"runs/{run}/round-0002/"));
        cluster.Faults.Release(Window);
        await RunProbe.WaitForAsync(client, run, r => r.Status == "completed", TimeSpan.FromMinutes(10));
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        Assert.True(rounds[0].Metrics.ContainsKey("shards/evaluate/checkpoint_copy_seconds"), "round 1 reports the copy");
        for (int k = 0; k < 2; k++)
            Assert.Contains($"run {run} round 2: generation shard {k} taken from the generation started early", cluster.Silos[0].Output);
        // Round 1's trained checkpoint: kept in memory by the trainer, copied by the other replica, read from storage by no one.
        string log = string.Concat(cluster.Silos.Select(s => s.Output));
        string sha = RunProbe.KeptAs(log, run, rounds[0]);
        Assert.Contains($"checkpoint {sha} copied from the replica that trained it", log);
        Assert.DoesNotContain($"checkpoint {sha} read from storage", log, StringComparison.Ordinal);
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run, rounds: 2, shards: 2);

        // Replica 1's activation ended just after it said it keeps the copy (an idle release due then): the early generation
        // lands on a new activation that knows nothing of the copy, and still stores nothing before the upload is durable.
        const string Released = "replica-idle/keeps/replica-1";
        cluster.Faults.Fire(Released, 1);
        cluster.Faults.Hold(Window);
        var released = (await client.StartRunAsync(new StartRunRequest { Spec = Spec() })).Id;
        await cluster.Faults.WaitUntilReachedAsync(Window, TimeSpan.FromMinutes(8));
        // Its generation either waits (the line) or has stored its shard of round 2 (the bug): polled until one of the two.
        const string Waits = "not durable yet and not held by this activation, waits for its upload on replica 0";
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(8);
        while (!cluster.Silos.Any(s => s.Output.Contains(Waits, StringComparison.Ordinal)))
        {
            Assert.Empty(await RunProbe.BlobsAsync(cluster, $"runs/{released}/round-0002/"));
            Assert.True(DateTime.UtcNow < deadline, $"no silo said \"{Waits}\" within 8 minutes");
            await Task.Delay(250);
        }
        Assert.Matches($@"run {released}: a generation on checkpoint \S+, {Waits}", string.Concat(cluster.Silos.Select(s => s.Output)));
        Assert.Equal(1, cluster.Faults.Hits(Released));
        Assert.Empty(await RunProbe.BlobsAsync(cluster, $"runs/{released}/round-0002/"));
        cluster.Faults.Release(Window);
        await RunProbe.WaitForAsync(client, released, r => r.Status == "completed", TimeSpan.FromMinutes(10));
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, released, rounds: 2, shards: 2);
        await RunProbe.AssertSameRoundsAsync(cluster, rounds, (await client.ListRoundsAsync(new ListRoundsRequest { RunId = released })).Rounds);

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

    /// <summary>
    /// kill -9 inside a copy, on either side, and of the trainer after it, while the upload is held too (the copy goes only
    /// while it uploads), on one cluster, each run against the same uninterrupted run:
    /// <list type="number">
    /// <item>The copying replica's silo, held with a piece received and not yet written (its staging folder half full): its
    /// evaluation shard fails with the silo, the round goes on once the upload is durable and evaluates that shard again,
    /// and the silo started again in its place (same data folder and silo port, so the same checkpoint cache) removes the
    /// half copy at its start.</item>
    /// <item>The trainer's silo, held with a piece asked for and not yet read: the copy fails, the shard waits for the
    /// upload, which was lost with the trainer, and round 1 trains again.</item>
    /// <item>The trainer's silo once the copy is whole and the other replica's early generation on it waits for the upload:
    /// its durability call fails (or a new activation of replica 0 says the checkpoint was lost), so it stores nothing, and
    /// round 1 trains again.</item>
    /// </list>
    /// Each run ends with every checkpoint file and every metric but times (and per-silo shard counts) equal to the
    /// uninterrupted run's.
    /// </summary>
    [Fact]
    public async Task ASiloKilledInsideACopyOnEitherSideOrAfterItLeavesNoHalfCopyAndTheRunEndsAsAnUninterruptedOne()
    {
        var gpu = new List<Dictionary<string, string>>();
        for (int k = 0; k < 2; k++)
        {
            var settings = LocalTestCluster.ReplicasNeverIdle();
            foreach (var (key, value) in LocalTestCluster.FastProbes()) settings[key] = value;
            settings["Silo__DataFolder"] = RepositoryPaths.NewTempFolder("silo-data");
            gpu.Add(settings);
        }
        await using var cluster = await LocalTestCluster.StartAsync([("control", LocalTestCluster.FastProbes()), ("gpu", gpu[0]), ("gpu", gpu[1])]);
        await SiloLogTail.OnFailureAsync(cluster, output, () => KilledInOrAfterCopiesAsync(cluster, gpu));
    }

    private enum Kill { CopierInsideItsCopy, TrainerInsideTheCopy, TrainerAfterTheCopy }

    private async Task KilledInOrAfterCopiesAsync(LocalTestCluster cluster, List<Dictionary<string, string>> gpu)
    {
        var client = cluster.Client(0);
        var (_, uninterrupted) = await RunProbe.CompletedRunAsync(client, Spec(), TimeSpan.FromMinutes(10));
        // A GPU silo's settings by its silo port: the one started in a killed silo's place keeps both (and so its cache folder).
        var settingsOf = cluster.Silos.Skip(1).Select((silo, k) => (silo.SiloPort, Settings: gpu[k])).ToDictionary(s => s.SiloPort, s => s.Settings);
        string Checkpoints(SiloProcess silo) =>
            Path.Combine(settingsOf[silo.SiloPort]["Silo__DataFolder"], "cache", $"gpu-{silo.SiloPort}", "checkpoints");
        // A copy's staging folder beside the checkpoint's place (a name with a dot: never taken for a checkpoint).
        static string[] HalfCopies(string folder) => Directory.GetDirectories(folder).Where(d => Path.GetFileName(d).Contains('.')).ToArray();
        SiloProcess OtherGpuSilo(SiloProcess silo) => cluster.Silos.Skip(1).Single(s => !s.HasExited && s != silo);

        foreach (var kill in Enum.GetValues<Kill>())
        {
            string? point = kill switch
            {
                Kill.CopierInsideItsCopy => PolicyWorkerGrain.CopyPoint, Kill.TrainerInsideTheCopy => PolicyWorkerGrain.ServePoint, _ => null,
            };
            cluster.Faults.Hold(Window);
            if (point is not null) cluster.Faults.Hold(point);
            var run = (await client.StartRunAsync(new StartRunRequest { Spec = Spec() })).Id;
            SiloProcess killed;
            string? half = null;
            if (point is not null)
            {
                await cluster.Faults.WaitUntilReachedAsync(point, TimeSpan.FromMinutes(8));
                killed = cluster.Silos.Single(s => !s.HasExited && s.ProcessId == cluster.Faults.ReachedBy(point));
                var copier = kill == Kill.TrainerInsideTheCopy ? OtherGpuSilo(killed) : killed;
                // Inside the copy: the receiver's staging folder holds the checkpoint's files, half written.
                half = Assert.Single(HalfCopies(Checkpoints(copier)));
                output.WriteLine($"{kill}: run {run}, {half} holds {Directory.GetFiles(half).Length} files");
            }
            else
            {
                await cluster.Faults.WaitUntilReachedAsync(Window, TimeSpan.FromMinutes(8));
                // The copier's early generation of round 2 waits for the upload (polled: the line is awaited, not timed).
                var waits = new System.Text.RegularExpressions.Regex(
                    $@"run {run}: a generation on checkpoint \S+, copied from the trainer, waits for its upload on replica 0");
                var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(8);
                SiloProcess? copier;
                while ((copier = cluster.Silos.FirstOrDefault(s => !s.HasExited && waits.IsMatch(s.Output))) is null)
                {
                    Assert.True(DateTime.UtcNow < deadline, $"no silo said \"{waits}\" within 8 minutes");
                    await Task.Delay(250);
                }
                killed = OtherGpuSilo(copier);
            }
            killed.Kill();
            if (point is not null) cluster.Faults.Release(point);
            cluster.Faults.Release(Window);
            await cluster.ReplaceKilledSiloAsync(cluster.Silos.IndexOf(killed), "gpu", settingsOf[killed.SiloPort], TimeSpan.FromMinutes(5));
            // The killed copier's half copy is gone once its silo is up again. The new silo may already be downloading the same
            // checkpoint by then (its evaluation shard, once the upload is whole), into a staging folder of its own: seen once
            // with two of these tests at a time. So the kill's own folder is the one checked.
            if (kill == Kill.CopierInsideItsCopy) Assert.False(Directory.Exists(half), $"the killed copier's half copy {half} is still there");
            await RunProbe.WaitForAsync(client, run, r => r.Status == "completed", TimeSpan.FromMinutes(10));
            var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run })).Rounds;
            Assert.Equal([1, 2], rounds.Select(r => r.Round));
            // After the copy, round 1's evaluation had finished before the kill, and ran again with the retrained checkpoint.
            // Round 1 keeps its 2 replicas; round 2 has 1 when it started before the killed silo's replacement was listed.
            Assert.Equal(2, rounds[0].Metrics["shards/generate/count"]);
            await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run, rounds: 2, evaluatedTwice: kill == Kill.TrainerAfterTheCopy ? [1] : null,
                shardsByRound: RunProbe.GenerationShards(rounds));
            await RunProbe.AssertSameRoundsAcrossReplicaCountsAsync(cluster, uninterrupted, rounds);
            string log = string.Concat(cluster.Silos.Select(s => s.Output));
            if (kill == Kill.TrainerAfterTheCopy)
                // The copy's early generation stopped without storing anything (or was dropped with the failed upload).
                Assert.Matches($"run {run}: a phase on checkpoint \\S+ stops|run {run} round 2 generate cancelled", log);
            else
                // Whichever side died inside it, the copy failed and the shard waited for the upload.
                Assert.Contains($"run {run}: a replica could not copy checkpoint", log);
            // The copier's death cost its evaluation shard alone: the upload became durable and the round's train phase,
            // asked again, reused it. The trainer's took the upload with it: round 1 trained again, under a new attempt folder.
            int trained = System.Text.RegularExpressions.Regex.Count(log, System.Text.RegularExpressions.Regex.Escape($"run {run} round 1: trained model kept in memory as checkpoint"));
            Assert.Equal(kill == Kill.CopierInsideItsCopy ? 1 : 2, trained);
            if (kill == Kill.CopierInsideItsCopy) Assert.Contains($"run {run} round 1 train: already done", log);
        }
    }
}
