using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Serving;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Judging;

/// <summary>
/// judge.kind remote in a real cluster: a round judged by the project's own `serve` endpoint (a tiny policy folder, in this
/// process, on loopback, behind a key the silo reads from its environment), the API's refusals, and a silo killed between
/// two batches of remote judgements, whose resumed phase asks only what was never answered.
/// </summary>
[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class RemoteJudgeClusterTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private void Show(IDictionary<string, double> metrics) =>
        output.WriteLine(string.Join(", ", metrics.Where(m => m.Key.StartsWith("judge/", StringComparison.Ordinal) || m.Key is "time/judge" or "pairs/kept").Select(m => $"{m.Key} {m.Value:G4}")));

    private const string Key = "7c2e9b4a1f6d3e8c5a0b9d2f4e7a1c6b";

    /// <summary>48 prompts x 4 samples, one judgement each: 192 judgements in round 1.</summary>
    private static RunSpec Spec(string endpoint, string? keyVariable, int concurrency)
    {
        var spec = LocalTestCluster.SmallSpec(rounds: 1);
        spec.Judge = new JudgeSpec
        {
            Kind = "remote", Endpoint = endpoint, RemoteModel = "tiny-judge", Judgements = 1, MaxNewTokens = 8, Concurrency = concurrency,
            // The built-in model's context is 128 tokens: the rubric would not fit, the compact text does.
            Template = "judge {prompt}{response}\n", TimeoutSeconds = 60,
        };
        if (keyVariable is not null) spec.Judge.ApiKeyEnv = keyVariable;
        return spec;
    }

    [Fact]
    public async Task ARoundJudgedByTheServeEndpointCompletesAndBadRemoteSettingsAreInvalidArguments()
    {
        string folder = RepositoryPaths.NewTempFolder("remote-judge-policy");
        using (var lm = BuiltinModels.Create(BuiltinModels.Tiny, seed: 5)) HfCheckpoint.Save(lm, folder, new ByteTokenizer().HfFiles());
        using var model = ServedModel.Load(folder, CPU, "tiny-judge");
        await using var serve = await ServeHost.StartAsync(model, new ServeOptions { Port = 0, ApiKey = Key });
        await using var cluster = await LocalTestCluster.StartAsync(("all", new Dictionary<string, string> { ["JUDGE_TEST_KEY"] = Key }));
        var client = cluster.Client();

        // Refused at StartRun, each naming its field: an endpoint that is not http(s), and a key variable the silo lacks.
        var bad = Spec("ftp://127.0.0.1/v1", "JUDGE_TEST_KEY", 4);
        var e = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = bad }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("judge.endpoint 'ftp://127.0.0.1/v1' is not an absolute http or https URL", e.Status.Detail);
        var unset = Spec(serve.Url, "JUDGE_TEST_KEY_NOT_SET", 4);
        e = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(new StartRunRequest { Spec = unset }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("judge.api_key_env 'JUDGE_TEST_KEY_NOT_SET' is not set", e.Status.Detail);

        var run = await client.StartRunAsync(new StartRunRequest { Spec = Spec(serve.Url, "JUDGE_TEST_KEY", 4) });
        var done = await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));
        Assert.Equal(1, done.CommittedRounds);
        var metrics = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds.Single().Metrics;
        Show(metrics);
        Assert.Equal(192, metrics["judge/remote_requests"]); // every judgement asked once, none retried
        Assert.Equal(0, metrics["judge/remote_retries"]);
        Assert.Equal(0, metrics["judge/remote_cached"]);
        // The random tiny judge rarely writes "Score: N": whatever it wrote is counted, not guessed.
        double unscored = metrics["judge/unscored_rate"];
        Assert.InRange(unscored, 0, 1);
        Assert.Equal(Math.Round(unscored * 192), metrics["judge/parse_failures"]);
        Assert.True(double.IsNaN(metrics["health/judge_drift_tau"]));
        // The key is in no stored byte of the run.
        var container = RunProbe.Container(cluster);
        foreach (var name in await RunProbe.BlobsAsync(cluster, $"runs/{run.Id}/"))
        {
            if (name.EndsWith(".safetensors", StringComparison.Ordinal)) continue;
            string text = (await container.GetBlobClient(name).DownloadContentAsync()).Value.Content.ToString();
            Assert.DoesNotContain(Key, text);
        }
    }

    [Fact]
    public async Task ASiloKilledBetweenBatchesOfRemoteJudgementsResumesWithTheAnswersItHadAndAsksOnlyTheRest()
    {
        // A judge whose answers depend on the order it is asked in: a judgement asked twice would (almost surely) score differently.
        var given = new System.Collections.Concurrent.ConcurrentDictionary<long, double>();
        await using var judge = await FakeJudgeServer.StartAsync((n, body, context) =>
        {
            double score = n % 6;
            given[(long)body["seed"]!] = score;
            return FakeJudgeServer.Answer(context, $"Score: {score}");
        });
        await using var cluster = await LocalTestCluster.StartAsync(("all", null));
        const string point = "judge/round-1/remote-batch";
        cluster.Faults.Hold(point); // reached once the first batch (4 x concurrency 8 = 32 answers) is kept
        var run = await cluster.Client().StartRunAsync(new StartRunRequest { Spec = Spec(judge.Url, null, 8) });
        await cluster.Faults.WaitUntilReachedAsync(point, TimeSpan.FromMinutes(5));
        Assert.Equal(32, judge.Count);
        cluster.Silos[0].Kill();
        cluster.Faults.Release(point);
        await cluster.ReplaceKilledSiloAsync(0, "all", timeout: TimeSpan.FromMinutes(5));
        var client = cluster.Client(1);
        await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));

        // Each of the 192 judgements was asked exactly once, across the kill.
        Assert.Equal(192, judge.Count);
        Assert.Equal(192, given.Count);
        var metrics = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds.Single().Metrics;
        Show(metrics);
        Assert.Equal(32, metrics["judge/remote_cached"]);
        Assert.Equal(160, metrics["judge/remote_requests"]);
        Assert.Equal(0, metrics["judge/unscored_rate"]);
        // The scores are the answers given (the first 32 read back from the run's storage): their mean, to the last bit.
        Assert.Equal(given.Values.Average(), metrics["judge/score_mean"], 12);
    }
}
