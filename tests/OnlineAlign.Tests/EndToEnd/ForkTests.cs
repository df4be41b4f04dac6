using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.EndToEnd;

/// <summary>
/// StartRun's fork_from through the real API and CLI: a new run from a committed round of another, with overrides. Its
/// round 0 is the parent's round (the same weights, copied into its own storage), it completes a round of its own, its
/// lineage is shown, and the parent is untouched. Bad forks are refused naming the field.
/// </summary>
[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class ForkTests(SharedCluster shared) : IClassFixture<SharedCluster>
{
    [Fact]
    public async Task AForkStartsFromTheParentsRoundWithOverridesAndLeavesTheParentAlone()
    {
        var cluster = shared.Cluster;
        var client = cluster.Client();
        var parentSpec = LocalTestCluster.SmallSpec(rounds: 1);
        var parent = await client.StartRunAsync(new StartRunRequest { Spec = parentSpec });
        parent = await RunProbe.WaitForAsync(client, parent.Id, r => r.Status == "completed", TimeSpan.FromMinutes(5));
        var parentRounds = await client.ListRoundsAsync(new ListRoundsRequest { RunId = parent.Id, IncludeSuperseded = true });

        // Refusals, each naming the field: a round not committed, a run that does not exist, an unknown path, a value
        // that is not a number, one the spec's own checks refuse, a model change, and a spec beside fork_from.
        await Refused(client, StatusCode.InvalidArgument, "fork_from.round: round 2 of run", Fork(parent.Id, 2));
        await Refused(client, StatusCode.InvalidArgument, "fork_from.round: round -1", Fork(parent.Id, -1));
        await Refused(client, StatusCode.NotFound, "fork_from.run_id: run 'no-such-run' does not exist", Fork("no-such-run", 1));
        await Refused(client, StatusCode.InvalidArgument, "loss.betta: 'betta' is not a field of loss", Fork(parent.Id, 1, "loss.betta=0.05"));
        await Refused(client, StatusCode.InvalidArgument, "loss.beta must be a finite number, got 'abc'", Fork(parent.Id, 1, "loss.beta=abc"));
        await Refused(client, StatusCode.InvalidArgument, "loss.beta must be > 0, got 0", Fork(parent.Id, 1, "loss.beta=0"));
        await Refused(client, StatusCode.InvalidArgument, "model.builtin cannot be changed by a fork", Fork(parent.Id, 1, "model.builtin=small"));
        var both = Fork(parent.Id, 1);
        both.Spec = parentSpec;
        await Refused(client, StatusCode.InvalidArgument, "spec: leave it unset with fork_from", both);

        // The CLI forks from round 1 with loss.beta changed, watches the new run to its end and prints its lineage.
        string api = $"http://127.0.0.1:{cluster.Silos[0].ApiPort}";
        var (code, stdout, stderr) = await CliProcess.RunAsync(TimeSpan.FromMinutes(5),
            "fork", "--api", api, parent.Id, "--round", "1", "--set", "loss.beta=0.05", "--name", "child", "--watch");
        Assert.True(code == 0, stderr + stdout);
        string childId = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Trim();
        Assert.StartsWith("child-", childId);
        Assert.Contains($"forked from: {parent.Id} round 1", stdout);

        var child = await client.GetRunAsync(new GetRunRequest { RunId = childId });
        Assert.Equal("completed", child.Status);
        Assert.Equal(parent.Id, child.ForkedFrom.RunId);
        Assert.Equal(1, child.ForkedFrom.Round);
        Assert.Equal(0.05, child.Spec.Loss.Beta);
        Assert.Equal(parentSpec.PromptsPerRound, child.Spec.PromptsPerRound); // the rest is the parent's
        Assert.Null(parent.ForkedFrom);
        var listed = (await client.ListRunsAsync(new ListRunsRequest())).Runs.Single(r => r.Id == childId);
        Assert.Equal(child.ForkedFrom, listed.ForkedFrom);

        // Round 0 is the parent's round 1: the same weights, in the child's own storage (the parent's retention cannot
        // take them away); then one round of its own.
        var childRounds = await client.ListRoundsAsync(new ListRoundsRequest { RunId = childId });
        Assert.StartsWith($"runs/{childId}/", childRounds.Initial.Checkpoint);
        Assert.Equal(await RunProbe.WeightsSha256(cluster, parentRounds.Rounds[0].Checkpoint), await RunProbe.WeightsSha256(cluster, childRounds.Initial.Checkpoint));
        Assert.Equal([1], childRounds.Rounds.Select(r => r.Round));
        Assert.NotEqual(await RunProbe.WeightsSha256(cluster, parentRounds.Rounds[0].Checkpoint), await RunProbe.WeightsSha256(cluster, childRounds.Rounds[0].Checkpoint));

        // A fork retried with its request id is the same run (cancelled at once: its rounds are not this test's).
        var retried = Fork(parent.Id, 0, "seed=9");
        retried.RequestId = "fork-retry-1";
        var first = await client.StartRunAsync(retried);
        Assert.Equal(first.Id, (await client.StartRunAsync(retried)).Id);
        Assert.Equal(0, first.ForkedFrom.Round);
        await client.CancelRunAsync(new RunRef { RunId = first.Id });

        // The parent is never modified: the same state version, status and rounds as before the forks.
        var after = await client.GetRunAsync(new GetRunRequest { RunId = parent.Id });
        Assert.Equal(parent.StateVersion, after.StateVersion);
        Assert.Equal(parent.Status, after.Status);
        Assert.Equal(parentRounds, await client.ListRoundsAsync(new ListRoundsRequest { RunId = parent.Id, IncludeSuperseded = true }));

        // compare shows the lineage beside the metrics.
        var compare = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "compare", "--api", api, parent.Id, childId,
            "--out", Path.Combine(RepositoryPaths.NewTempFolder("fork-compare"), "compare.png"));
        Assert.True(compare.ExitCode == 0, compare.Stderr);
        Assert.Contains("forked from", compare.Stdout);
    }

    /// <summary>
    /// A LoRA run's round 1 holds only the adapter: its fork's round 0 is the parent's base with that adapter (ForkFiles),
    /// in the child's own storage; the child trains a round of its own with an override, and the parent is untouched.
    /// </summary>
    [Fact]
    public async Task AForkOfALoraRunsRoundTrainsFromTheParentsBaseAndAdapter()
    {
        var cluster = shared.Cluster;
        var client = cluster.Client();
        var parentSpec = LocalTestCluster.SmallSpec(rounds: 1);
        parentSpec.Model = new ModelSpec { Lora = new LoraSpec { R = 8, Alpha = 16, TargetModules = { "q_proj", "v_proj" } } };
        var parent = await client.StartRunAsync(new StartRunRequest { Spec = parentSpec });
        parent = await RunProbe.WaitForAsync(client, parent.Id, r => r.Status == "completed", TimeSpan.FromMinutes(5));
        var parentRounds = await client.ListRoundsAsync(new ListRoundsRequest { RunId = parent.Id, IncludeSuperseded = true });
        var parentBlobs = await RunProbe.BlobsAsync(cluster, $"runs/{parent.Id}/");

        var child = await client.StartRunAsync(Fork(parent.Id, 1, "loss.beta=0.05"));
        child = await RunProbe.WaitForAsync(client, child.Id, r => r.Status is "completed" or "failed", TimeSpan.FromMinutes(5));
        Assert.True(child.Status == "completed", $"the fork ended {child.Status}: {child.Error}");
        Assert.Equal(0.05, child.Spec.Loss.Beta);
        Assert.Equal(8, child.Spec.Model.Lora.R);
        var childRounds = await client.ListRoundsAsync(new ListRoundsRequest { RunId = child.Id });
        Assert.Equal([1], childRounds.Rounds.Select(r => r.Round));
        // Round 0: the parent's round-0 base weights and its round 1's adapter, copied under the child's prefix.
        var initial = (await RunProbe.BlobsAsync(cluster, childRounds.Initial.Checkpoint[..^"manifest.json".Length])).Select(Path.GetFileName).ToList();
        Assert.StartsWith($"runs/{child.Id}/round-0000/fork-", childRounds.Initial.Checkpoint);
        Assert.Contains("model.safetensors", initial);
        Assert.Contains("adapter_model.safetensors", initial);
        Assert.Equal(await FileSha256(cluster, parentRounds.Initial.Checkpoint, "model.safetensors"),
            await FileSha256(cluster, childRounds.Initial.Checkpoint, "model.safetensors"));
        Assert.Equal(await FileSha256(cluster, parentRounds.Rounds[0].Checkpoint, "adapter_model.safetensors"),
            await FileSha256(cluster, childRounds.Initial.Checkpoint, "adapter_model.safetensors"));
        Assert.NotEqual(await FileSha256(cluster, parentRounds.Initial.Checkpoint, "adapter_model.safetensors"),
            await FileSha256(cluster, childRounds.Initial.Checkpoint, "adapter_model.safetensors"));

        var after = await client.GetRunAsync(new GetRunRequest { RunId = parent.Id });
        Assert.Equal(parent.StateVersion, after.StateVersion);
        Assert.Equal(parentRounds, await client.ListRoundsAsync(new ListRoundsRequest { RunId = parent.Id, IncludeSuperseded = true }));
        Assert.Equal(parentBlobs, await RunProbe.BlobsAsync(cluster, $"runs/{parent.Id}/"));
    }

    /// <summary>The sha256 a checkpoint's manifest records for one of its files.</summary>
    private static async Task<string> FileSha256(LocalTestCluster cluster, string manifestPath, string name)
    {
        var blob = RunProbe.Container(cluster).GetBlobClient(manifestPath);
        var manifest = System.Text.Json.Nodes.JsonNode.Parse((await blob.DownloadContentAsync()).Value.Content.ToString())!;
        return manifest["files"]!.AsArray().Single(f => f!["path"]!.GetValue<string>().EndsWith("/" + name, StringComparison.Ordinal))!["sha256"]!.GetValue<string>();
    }

    private static StartRunRequest Fork(string runId, int round, params string[] overrides)
    {
        var fork = new ForkFrom { RunId = runId, Round = round };
        fork.Overrides.AddRange(overrides);
        return new StartRunRequest { ForkFrom = fork };
    }

    private static async Task Refused(Runs.RunsClient client, StatusCode code, string detail, StartRunRequest request)
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(request).ResponseAsync);
        Assert.True(code == e.StatusCode && e.Status.Detail.Contains(detail, StringComparison.Ordinal), $"expected {code} with \"{detail}\", got {e.StatusCode}: {e.Status.Detail}");
    }
}
