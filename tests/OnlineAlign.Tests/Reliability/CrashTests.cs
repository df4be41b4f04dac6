using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Reliability;

[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class CrashTests
{
    private static RunSpec CrashSpec(int rounds = 3)
    {
        var spec = LocalTestCluster.SmallSpec(rounds);
        spec.Optimizer = new OptimizerSpec { CarryState = true, BatchSize = 8 };
        return spec;
    }

    [Fact]
    public async Task KillsDuringGenerationTrainingAndUploadResumeToBitIdenticalWeights()
    {
        await using var cluster = await LocalTestCluster.StartAsync(("all", null));
        // SIGKILL the only silo while it is held inside a phase, three times, and start a fresh one in its place each time:
        // in round 1's generation, after round 2's first training step, and between two files of round 3's upload.
        string[] points = ["generate/round-1/start", "train/round-2/step", "train/round-3/uploaded-one-file"];
        cluster.Faults.Hold(points[0]);
        var run = await cluster.Client().StartRunAsync(new StartRunRequest { Spec = CrashSpec() });
        int silo = 0;
        for (int i = 0; i < points.Length; i++)
        {
            await cluster.Faults.WaitUntilReachedAsync(points[i], TimeSpan.FromMinutes(4));
            // Round 3's upload runs behind its evaluation (Silo:OverlapCheckpointUpload): killed once the evaluation is done
            // and the round, waiting for a checkpoint with one file in storage, is not committed.
            if (i == 2) await EvaluatedNotCommittedAsync(cluster, silo, run.Id, 3);
            cluster.Silos[silo].Kill();
            if (i > 0) cluster.Faults.Release(points[i]);
            if (i + 1 < points.Length) cluster.Faults.Hold(points[i + 1]);
            await cluster.ReplaceKilledSiloAsync(silo, "all", timeout: TimeSpan.FromMinutes(5));
            silo++;
            if (i > 0) continue;
            // Killed in round 1's generation: the state read back says round 1 was started (its progress record) while its
            // last write still named round 0's evaluation. The woken run and GetRun report the round in progress, not round 0.
            await cluster.Silos[silo].WaitForOutputAsync($"Run {run.Id} continues at round ", TimeSpan.FromMinutes(2));
            Assert.Contains($"Run {run.Id} continues at round 1 (generate) after 0 committed rounds", cluster.Silos[silo].Output);
            for (var deadline = DateTime.UtcNow.AddMinutes(4); cluster.Faults.ReachedBy(points[0]) != cluster.Silos[silo].ProcessId;)
            {
                Assert.True(DateTime.UtcNow < deadline, "the woken run did not reach round 1's generation again");
                await Task.Delay(100);
            }
            var held = await cluster.Client(silo).GetRunAsync(new GetRunRequest { RunId = run.Id });
            Assert.Equal((1, "generate", 0, "running"), (held.Round, held.Phase, held.CommittedRounds, held.Status));
            cluster.Faults.Release(points[0]);
        }
        var client = cluster.Client(silo);
        var done = await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(5));
        Assert.Equal(3, done.CommittedRounds);
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2, 3], rounds.Select(r => r.Round)); // none skipped, none twice
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 3, evaluatedTwice: [3]);

        // The same spec without interruption ends with the same policy weights, bit for bit (CPU): no sample was
        // skipped or repeated, no step trained twice, and the optimiser state resumed exactly.
        var again = await client.StartRunAsync(new StartRunRequest { Spec = CrashSpec() });
        await RunProbe.WaitForAsync(client, again.Id, r => r.Status == "completed", TimeSpan.FromMinutes(5));
        var uninterrupted = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = again.Id })).Rounds;
        Assert.Equal(await RunProbe.WeightsSha256(cluster, uninterrupted[^1].Checkpoint), await RunProbe.WeightsSha256(cluster, rounds[^1].Checkpoint));
        foreach (var key in new[] { "generation/length_mean", "judge/score_mean", "pairs/kept", "loss", "eval/accuracy" })
            Assert.Equal(uninterrupted[1].Metrics[key], rounds[1].Metrics[key]);

        // The uninterrupted run's worker kept each model it trained in memory as the checkpoint it wrote (by its hash) and
        // never read those checkpoints back; the silo started after the kill inside round 2's training had no such model and
        // read round 1's checkpoint from storage. Both ended with the same weights (above).
        string log = cluster.Silos[silo].Output;
        foreach (var r in uninterrupted.Take(2))
        {
            string sha = RunProbe.KeptAs(log, again.Id, r);
            Assert.DoesNotContain($"checkpoint {sha} read into memory", log);
        }
        Assert.Contains($"checkpoint {RunProbe.KeptAs(cluster.Silos[1].Output, run.Id, rounds[0])} read into memory", cluster.Silos[2].Output);
    }

    /// <summary>
    /// A kill -9 inside the checkpoint's upload behind the evaluation (fault point "train/round-1/background-upload": the
    /// train phase has returned, nothing of its checkpoint is in storage yet): held there until the round's evaluation is
    /// done and the round is still not committed; the resumed run trains round 1 again and ends with every round's
    /// checkpoint (every file, AdamW moments included) and every metric but times equal to an uninterrupted run's.
    /// </summary>
    [Fact]
    public async Task AKillWhileTheCheckpointUploadsBehindTheEvaluationResumesToTheSameRounds()
    {
        const string point = "train/round-1/background-upload";
        await using var cluster = await LocalTestCluster.StartAsync(("all", null));
        cluster.Faults.Hold(point);
        var run = await cluster.Client().StartRunAsync(new StartRunRequest { Spec = CrashSpec(rounds: 2) });
        await cluster.Faults.WaitUntilReachedAsync(point, TimeSpan.FromMinutes(4));
        await EvaluatedNotCommittedAsync(cluster, 0, run.Id, 1);
        cluster.Silos[0].Kill();
        cluster.Faults.Release(point);
        await cluster.ReplaceKilledSiloAsync(0, "all", timeout: TimeSpan.FromMinutes(5));
        var client = cluster.Client(1);
        await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(5));
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        // One checkpoint per round (the lost one never got a manifest) and one marker; round 1 evaluated twice.
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 2, evaluatedTwice: [1]);

        var (again, uninterrupted) = await RunProbe.CompletedRunAsync(client, CrashSpec(rounds: 2), TimeSpan.FromMinutes(5));
        await RunProbe.AssertSameRoundsAsync(cluster, uninterrupted, rounds);
        // The uninterrupted run's uploads overlapped its evaluations, and were waited for at the commits.
        // Logged last by the upload the commit waited for: it may reach the test's pipe reader just after the run completed.
        await cluster.Silos[1].WaitForOutputAsync(
            $"run {again} round 2: checkpoint {uninterrupted[1].Checkpoint} uploaded behind the phases after training", TimeSpan.FromMinutes(1));
    }

    /// <summary>
    /// While a round's trained checkpoint uploads (held at a fault point), its evaluation finishes (the worker logs "round R
    /// done"), yet the round is not committed: a commit waits for the checkpoint to be durable.
    /// </summary>
    private static async Task EvaluatedNotCommittedAsync(LocalTestCluster cluster, int silo, string runId, int round)
    {
        await cluster.Silos[silo].WaitForOutputAsync($"run {runId} round {round} done", TimeSpan.FromMinutes(4));
        await Task.Delay(500);   // not a wait for an event: room for a commit that should not come, before the check
        var status = await cluster.Client(silo).GetRunAsync(new GetRunRequest { RunId = runId });
        Assert.Equal(round - 1, status.CommittedRounds);
    }

    /// <summary>
    /// A LoRA run killed inside round 2's training resumes to the same adapter, byte for byte; its export is a PEFT
    /// folder that, merged into the exported round 0's base by the CLI, computes what the adapted model computes. Round 0
    /// exports as a plain base and round 2 names the base it includes (ExportLayout).
    /// </summary>
    [Fact]
    public async Task ALoraRunKilledWhileTrainingResumesToTheSameAdapterAndItsExportMerges()
    {
        static RunSpec LoraSpec()
        {
            var spec = LocalTestCluster.SmallSpec(rounds: 2);
            spec.Optimizer = new OptimizerSpec { CarryState = true, BatchSize = 8, LearningRate = 1e-3 };
            spec.Model = new ModelSpec { Lora = new LoraSpec { R = 8, Alpha = 16, Dropout = 0.1, TargetModules = { "q_proj", "v_proj", "down_proj" } } };
            return spec;
        }
        await using var cluster = await LocalTestCluster.StartAsync(("all", null));
        cluster.Faults.Hold("train/round-2/step");
        var run = await cluster.Client().StartRunAsync(new StartRunRequest { Spec = LoraSpec() });
        await cluster.Faults.WaitUntilReachedAsync("train/round-2/step", TimeSpan.FromMinutes(4));
        cluster.Silos[0].Kill();
        cluster.Faults.Release("train/round-2/step");
        await cluster.ReplaceKilledSiloAsync(0, "all", timeout: TimeSpan.FromMinutes(5));
        var client = cluster.Client(1);
        try { await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(5)); }
        catch (Exception e)
        {
            // What the restarted silo logged is what explains a run that does not resume (a state it cannot read, say).
            string output = cluster.Silos[1].Output;
            throw new InvalidOperationException($"{e.Message}; the restarted silo's output ends:\n{output[Math.Max(0, output.Length - 6000)..]}", e);
        }
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));

        var again = await client.StartRunAsync(new StartRunRequest { Spec = LoraSpec() });
        await RunProbe.WaitForAsync(client, again.Id, r => r.Status == "completed", TimeSpan.FromMinutes(5));
        var uninterrupted = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = again.Id })).Rounds;
        Assert.Equal(await RunProbe.WeightsSha256(cluster, uninterrupted[^1].Checkpoint), await RunProbe.WeightsSha256(cluster, rounds[^1].Checkpoint));

        string api = $"http://127.0.0.1:{cluster.Silos[1].ApiPort}", exports = RepositoryPaths.NewTempFolder("lora-export");
        string base0 = Path.Combine(exports, "round-0"), adapter = Path.Combine(exports, "round-2"), merged = Path.Combine(exports, "merged");
        foreach (var (round, folder) in new[] { ("0", base0), ("2", adapter) })
        {
            var (code, stdout, stderr) = await CliProcess.RunAsync(TimeSpan.FromMinutes(2), "export", run.Id, "--api", api, "--round", round, "--out", folder);
            Assert.True(code == 0, stderr + stdout);
        }
        Assert.True(File.Exists(Path.Combine(adapter, "adapter_config.json")) && !File.Exists(Path.Combine(adapter, "model.safetensors")));
        // As transformers + PEFT load them: round 0 a plain base (its adapter in adapter/), round 2 naming its included base.
        Assert.False(File.Exists(Path.Combine(base0, "adapter_config.json")));
        Assert.True(File.Exists(Path.Combine(base0, "adapter", "adapter_config.json")));
        string named = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json")))!["base_model_name_or_path"]!.GetValue<string>();
        Assert.Equal(Path.Combine(adapter, "base"), named);
        Assert.True(File.Exists(Path.Combine(named, "model.safetensors")) && !File.Exists(Path.Combine(named, "adapter_config.json")));
        var merge = await CliProcess.RunAsync(TimeSpan.FromMinutes(2), "merge-adapter", "--base", base0, "--adapter", adapter, "--out", merged);
        Assert.True(merge.ExitCode == 0, merge.Stderr + merge.Stdout);

        using var adapted = OnlineAlign.Modeling.Checkpoints.PolicyCheckpoint.Load(adapter, TorchSharp.torch.CPU, base0);
        using var plain = OnlineAlign.Modeling.Checkpoints.HfCheckpoint.Load(merged);
        var ids = TorchSharp.torch.tensor(new long[] { 1, 60, 62, 61, 10 }).unsqueeze(0);
        Assert.True((adapted.forward(ids) - plain.forward(ids)).abs().max().item<float>() < 1e-5f);

        // The same committed round served from the cluster (downloaded as export does, base + adapter unmerged) answers
        // an OpenAI-style completion.
        using var serve = TerminalJob.Start(null, "serve", run.Id, "--api", api, "--round", "2", "--port", "0", "--model-name", "policy");
        string url = (await serve.WaitForOutputAsync(@"at (http://127\.0\.0\.1:\d+)", TimeSpan.FromMinutes(2))).Groups[1].Value;
        using var http = new HttpClient();
        var answer = await http.PostAsync($"{url}/v1/completions", new StringContent(
            """{"model": "policy", "prompt": "sort: 3 1 2", "max_tokens": 4, "temperature": 0}""", System.Text.Encoding.UTF8, "application/json"));
        string body = await answer.Content.ReadAsStringAsync();
        Assert.True(answer.IsSuccessStatusCode, body);
        Assert.Equal("text_completion", System.Text.Json.Nodes.JsonNode.Parse(body)!["object"]!.GetValue<string>());
        await serve.InterruptAsync(TimeSpan.FromSeconds(10));
        var (serveCode, _, serveErrors) = await serve.ExitAsync();
        Assert.True(serveCode == 0, $"serve stopped by Ctrl-C exited with {serveCode}: {serveErrors}");   // a server stopped as told ends cleanly
    }
}
