using System.Security.Cryptography.X509Certificates;
using Azure.Storage.Blobs;
using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Cluster;

[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class MultiSiloTests
{
    [Fact]
    public async Task ModelGrainsRunOnlyOnTheGpuSiloAndCheckpointsLandInBlobStorage()
    {
        // Silo-to-silo traffic over mutual TLS: each silo presents a certificate from the cluster's CA.
        var certificates = new TestCertificates("multi");
        await using var cluster = await LocalTestCluster.StartAsync(("control", certificates.SiloEnvironment("control")), ("gpu", certificates.SiloEnvironment("gpu")));
        // The "up" line is printed as the host starts, and may reach the test just after the silo answers its health check.
        foreach (var silo in cluster.Silos) await silo.WaitForOutputAsync("(mutual TLS)", TimeSpan.FromMinutes(1));
        var client = cluster.Client(0); // the control silo serves the API
        var sharded = LocalTestCluster.SmallSpec(rounds: 2);
        sharded.GenerationReplicas = 2;
        var run = await client.StartRunAsync(new StartRunRequest { Spec = sharded });
        // generation_replicas 0: one replica per GPU silo, and the control silo is not one.
        var perGpuSilo = LocalTestCluster.SmallSpec(rounds: 1);
        perGpuSilo.GenerationReplicas = 0;
        var single = await client.StartRunAsync(new StartRunRequest { Spec = perGpuSilo });
        var done = await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(4));
        Assert.Equal(2, done.CommittedRounds);
        await RunProbe.WaitForAsync(client, single.Id, r => r.Status == "completed", TimeSpan.FromMinutes(4));
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, single.Id, rounds: 1, shards: 1);

        // Generation sharded over 2 replicas sampled the same responses as 1 replica (same seed): the round's
        // response statistics, judge scores and the trained policy's evaluation agree exactly.
        var first = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds[0].Metrics;
        var alone = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = single.Id })).Rounds[0].Metrics;
        foreach (var key in new[] { "generation/length_mean", "generation/accuracy", "judge/score_mean", "pairs/kept", "eval/accuracy" })
            Assert.Equal(alone[key], first[key]);

        Assert.Contains($"run {run.Id} round 2 done", cluster.Silos[1].Output);
        Assert.DoesNotMatch($@"run {run.Id} round \d+ (done|trained)", cluster.Silos[0].Output);

        var container = new BlobServiceClient(cluster.Azurite.ConnectionString).GetBlobContainerClient("onlinealign");
        var blobs = new List<string>();
        await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, $"runs/{run.Id}/", CancellationToken.None)) blobs.Add(blob.Name);
        foreach (var round in new[] { "round-0000", "round-0001", "round-0002" })
        {
            Assert.Contains(blobs, b => b.Contains(round) && b.EndsWith("/manifest.json", StringComparison.Ordinal));
            Assert.Contains(blobs, b => b.Contains(round) && b.EndsWith("/model.safetensors", StringComparison.Ordinal));
        }
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.All(rounds, r => Assert.Contains(r.Checkpoint, blobs));

        // The GPU silo's port keeps a connection only from a certificate of the cluster's CA (and shows its own from
        // that CA): not without one, not with one from another CA.
        int port = cluster.Silos[1].SiloPort;
        var (memberCertificate, memberKey) = certificates.Issue("member");
        using (var member = X509Certificate2.CreateFromPemFile(memberCertificate, memberKey))
        {
            var (accepted, server) = await TlsProbe.HandshakeAsync(port, member, awaitVerdict: false);
            Assert.True(accepted);
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(X509Certificate2.CreateFromPem(File.ReadAllText(certificates.CaPath)));
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            Assert.True(chain.Build(server!), "the silo's certificate chains to the cluster's CA");
        }
        Assert.False((await TlsProbe.HandshakeAsync(port, clientCertificate: null, awaitVerdict: true)).Accepted);
        var (strangerCertificate, strangerKey) = new TestCertificates("stranger").Issue("stranger");
        using var stranger = X509Certificate2.CreateFromPemFile(strangerCertificate, strangerKey);
        Assert.False((await TlsProbe.HandshakeAsync(port, stranger, awaitVerdict: true)).Accepted);
    }

    [Fact]
    public async Task LosingTheGpuSiloParksTheRunAndLosingTheOrchestratorsSiloLosesNoPhase()
    {
        // The control silo notices the GPU silo's death itself (FastProbes); the control silo killed later is replaced in place.
        await using var cluster = await LocalTestCluster.StartAsync(("control", LocalTestCluster.FastProbes()), ("gpu", LocalTestCluster.FastProbes()));
        var spec = LocalTestCluster.SmallSpec(rounds: 2);
        cluster.Faults.Hold("train/round-1/start");
        var run = await cluster.Client(0).StartRunAsync(new StartRunRequest { Spec = spec });

        // The only GPU silo dies mid-round: the run waits, visibly, until a GPU silo joins, then goes on.
        await cluster.Faults.WaitUntilReachedAsync("train/round-1/start", TimeSpan.FromMinutes(4));
        cluster.Silos[1].Kill();
        cluster.Faults.Release("train/round-1/start");
        await RunProbe.WaitForAsync(cluster.Client(0), run.Id, r => r.Status == "waiting_for_gpu", TimeSpan.FromMinutes(3));
        cluster.Faults.Hold("train/round-2/step");
        await cluster.AddSiloAsync("gpu", LocalTestCluster.FastProbes(), TimeSpan.FromMinutes(5));

        // The silo hosting the orchestrator dies while the GPU silo trains: the phase in flight still finishes
        // there, and the orchestrator, reactivated on a new control silo, takes its recorded output instead of training again.
        await cluster.Faults.WaitUntilReachedAsync("train/round-2/step", TimeSpan.FromMinutes(4));
        cluster.Silos[0].Kill();
        cluster.Faults.Release("train/round-2/step");
        await cluster.ReplaceKilledSiloAsync(0, "control", LocalTestCluster.FastProbes(), TimeSpan.FromMinutes(5));
        var client = cluster.Client(3);
        await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(5));

        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 2);
        foreach (var control in new[] { cluster.Silos[0], cluster.Silos[3] })
            Assert.DoesNotMatch($@"run {run.Id} round \d+ (done|trained)", control.Output); // model work never ran on a control silo
    }

    [Fact]
    public async Task LosingTheWorkersGpuSiloMovesTheRunToTheOtherGpuSilo()
    {
        // The live silos notice the worker's silo's death themselves: FastProbes.
        await using var cluster = await LocalTestCluster.StartAsync(("control", LocalTestCluster.FastProbes()), ("gpu", LocalTestCluster.FastProbes()),
            ("gpu", LocalTestCluster.FastProbes()));
        var spec = LocalTestCluster.SmallSpec(rounds: 2);
        spec.GenerationReplicas = 2;
        var client = cluster.Client(0);
        cluster.Faults.Hold("train/round-1/start");
        var run = await client.StartRunAsync(new StartRunRequest { Spec = spec });
        await cluster.Faults.WaitUntilReachedAsync("train/round-1/start", TimeSpan.FromMinutes(4));
        int host = cluster.Silos.FindIndex(s => s.ProcessId == cluster.Faults.ReachedBy("train/round-1/start"));
        Assert.True(host is 1 or 2, "the worker's silo is one of the GPU silos");
        // The two generation replicas ran on the two GPU silos, one each.
        Assert.Contains($"run {run.Id} round 1 generate shard 0 started", cluster.Silos[host].Output);
        Assert.Contains($"run {run.Id} round 1 generate shard 1 started", cluster.Silos[3 - host].Output);
        cluster.Silos[host].Kill();
        cluster.Faults.Release("train/round-1/start");

        // Another GPU silo is up: the worker is placed there and the run goes on without parking.
        var states = new List<string>();
        var done = await RunProbe.WaitForAsync(client, run.Id, r => { states.Add(r.Status); return r.Status == "completed"; }, TimeSpan.FromMinutes(5));
        Assert.DoesNotContain("waiting_for_gpu", states);
        // The evaluation's last line may reach the test just after the run completed (the silo's log is read from its pipe).
        await cluster.Silos[3 - host].WaitForOutputAsync($"run {run.Id} round 2 done", TimeSpan.FromMinutes(1));
        Assert.Equal([1, 2], (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds.Select(r => r.Round));
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 2, shards: 2);
    }

    [Fact]
    public async Task ACorruptCheckpointIsReportedAndTheRunContinuesFromTheLastGoodOne()
    {
        await using var cluster = await LocalTestCluster.StartAsync(("all", null));
        var client = cluster.Client();
        // Once the initial checkpoint is recorded (the run is held at round 1's generation), pause.
        cluster.Faults.Hold("generate/round-1/start");
        var run = await client.StartRunAsync(new StartRunRequest { Spec = LocalTestCluster.SmallSpec(rounds: 2) });
        await cluster.Faults.WaitUntilReachedAsync("generate/round-1/start", TimeSpan.FromMinutes(4));
        Assert.Equal("paused", (await client.PauseRunAsync(new RunRef { RunId = run.Id })).Status);
        cluster.Faults.Release("generate/round-1/start");

        // Flip bytes of the initial policy's weights behind the store's back.
        var container = new BlobServiceClient(cluster.Azurite.ConnectionString).GetBlobContainerClient("onlinealign");
        var names = new List<string>();
        await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, $"runs/{run.Id}/round-0000/", CancellationToken.None))
            names.Add(blob.Name);
        // The policy's weights, not M0's (stored beside them under m0/ for the judges).
        var target = container.GetBlobClient(names.Single(n => n.EndsWith("/model.safetensors", StringComparison.Ordinal)
                                                              && !n.Contains("/m0/", StringComparison.Ordinal)));
        var bytes = (await target.DownloadContentAsync()).Value.Content.ToArray();
        bytes[^1] ^= 0xFF;
        await target.UploadAsync(new BinaryData(bytes), overwrite: true);

        // The silo that wrote it keeps a verified local copy; a new machine must read it from storage.
        await cluster.Silos[0].StopAsync(TimeSpan.FromSeconds(30));
        await cluster.AddSiloAsync("all");
        client = cluster.Client(1);
        await client.ResumeRunAsync(new RunRef { RunId = run.Id });
        var done = await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(4));
        Assert.Contains("is corrupt", done.Error);
        Assert.Contains("round 0 was discarded", done.Error);
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));

        // The discarded attempt is not lost: its round 0 is listed as superseded (on request), and export still
        // reaches its checkpoint by epoch (which answers that it is the corrupt one).
        var all = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id, IncludeSuperseded = true })).Rounds;
        var old = Assert.Single(all, r => r.Superseded);
        Assert.Equal((0, 0, 1), (old.Round, old.Epoch, old.SupersededByEpoch));
        Assert.Equal([1, 2], all.Where(r => !r.Superseded).Select(r => r.Round));
        var corrupt = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var export = client.ExportPolicy(new ExportPolicyRequest { RunId = run.Id, Round = 0, Epoch = 0 });
            while (await export.ResponseStream.MoveNext(CancellationToken.None)) { }
        });
        Assert.Equal(StatusCode.DataLoss, corrupt.StatusCode);

        // The CLI reaches it the same way: `rounds --all` names the attempt, `export --epoch` asks for it.
        string api = $"http://127.0.0.1:{cluster.Silos[1].ApiPort}";
        var listed = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "rounds", "--api", api, run.Id, "--all");
        Assert.True(listed.ExitCode == 0, listed.Stderr);
        Assert.Contains("0 (epoch 0, superseded)", listed.Stdout);
        Assert.DoesNotContain("superseded", (await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "rounds", "--api", api, run.Id)).Stdout);
        string exported = Path.Combine(RepositoryPaths.NewTempFolder("epoch-export"), "policy");
        var export = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "export", "--api", api, run.Id, "--round", "0", "--epoch", "0", "--out", exported);
        Assert.NotEqual(0, export.ExitCode);
        Assert.Contains("corrupt", export.Stderr + export.Stdout);
        Assert.False(Directory.Exists(exported));
    }
}
