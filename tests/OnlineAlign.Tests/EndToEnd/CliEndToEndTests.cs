using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.EndToEnd;

[Collection("processes")]
public class CliEndToEndTests
{
    [Fact]
    public async Task CliDrivesARunToCompletionAndTheExportLoads()
    {
        await using var cluster = await LocalTestCluster.StartAsync(("all", null));
        string api = $"http://127.0.0.1:{cluster.Silos[0].ApiPort}";
        string specFile = Path.Combine(RepositoryPaths.NewTempFolder("spec"), "spec.json");
        await File.WriteAllTextAsync(specFile, Google.Protobuf.JsonFormatter.Default.Format(LocalTestCluster.SmallSpec()));

        var (code, stdout, stderr) = await CliProcess.RunAsync(TimeSpan.FromMinutes(5), "start", "--api", api, "--spec", specFile, "--watch");
        Assert.True(code == 0, stderr + stdout);
        string runId = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Trim();

        var client = cluster.Client();
        var run = await client.GetRunAsync(new GetRunRequest { RunId = runId });
        Assert.Equal("completed", run.Status);
        var response = await client.ListRoundsAsync(new ListRoundsRequest { RunId = runId });
        var listed = response.Rounds;
        Assert.Equal([1, 2], listed.Select(r => r.Round));
        // Round 0: the warm-started policy, evaluated on the same held-out prompts before the first round.
        Assert.Equal(0, response.Initial.Round);
        Assert.InRange(response.Initial.Metrics["eval/accuracy"], 0, 1);

        // WatchRun from round 1 replays exactly the committed rounds, with the same metrics.
        var watched = new List<RoundMetrics>();
        using (var call = client.WatchRun(new WatchRunRequest { RunId = runId, FromRound = 1 }))
            await foreach (var e in call.ResponseStream.ReadAllAsync())
                if (e.RoundCommitted is { } r) watched.Add(r);
        Assert.Equal(listed, watched);
        Assert.All(listed, r => Assert.InRange(r.Metrics["eval/accuracy"], 0, 1));

        var rounds = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "rounds", "--api", api, runId);
        Assert.Contains("eval/accuracy", rounds.Stdout);
        Assert.Matches(@"│ 0\s+│", rounds.Stdout); // the table starts with round 0

        string exportFolder = RepositoryPaths.NewTempFolder("export");
        var export = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "export", "--api", api, runId, "--out", exportFolder);
        Assert.True(export.ExitCode == 0, export.Stderr);
        using var policy = HfCheckpoint.Load(exportFolder);
        Assert.Equal(259, policy.Config.VocabSize);
        Assert.IsType<ByteTokenizer>(TokenizerLoader.Load(exportFolder));

        string chart = Path.Combine(exportFolder, "chart.png");
        var plot = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "plot", "--api", api, runId, "--out", chart);
        Assert.True(plot.ExitCode == 0, plot.Stderr);
        Assert.True(new FileInfo(chart).Length > 10_000);
    }
}
