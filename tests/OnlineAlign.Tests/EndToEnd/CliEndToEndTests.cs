using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.EndToEnd;

[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class CliEndToEndTests
{
    [Fact]
    public async Task CliDrivesARunToCompletionAndTheExportLoads()
    {
        await using var cluster = await LocalTestCluster.StartAsync(("all", null));
        string api = $"http://127.0.0.1:{cluster.Silos[0].ApiPort}";
        string specFile = Path.Combine(RepositoryPaths.NewTempFolder("spec"), "spec.json");
        await File.WriteAllTextAsync(specFile, Google.Protobuf.JsonFormatter.Default.Format(LocalTestCluster.SmallSpec()));

        // A second, shorter run beside it, watched through the Prometheus endpoint while it runs, then compared.
        var client = cluster.Client();
        var otherSpec = LocalTestCluster.SmallSpec(rounds: 1);
        otherSpec.Seed = 8;
        var other = await client.StartRunAsync(new StartRunRequest { Spec = otherSpec });
        var scraped = ScrapeUntilAsync(cluster.Silos[0].MetricsPort, "onlinealign_round_metric", $"run_id=\"{other.Id}\"", "metric=\"eval/accuracy\"");

        // Two runs share the silo's computations: each takes longer than it would alone.
        var (code, stdout, stderr) = await CliProcess.RunAsync(TimeSpan.FromMinutes(8), "start", "--api", api, "--spec", specFile, "--watch");
        Assert.True(code == 0, stderr + stdout);
        string runId = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Trim();

        var run = await client.GetRunAsync(new GetRunRequest { RunId = runId });
        Assert.Equal("completed", run.Status);
        // The memory plan, made on the GPU silo from the model's config and the spec's batch sizes.
        Assert.Matches(@"^peak \d+ MiB on cpu of \d+(\.\d)? GiB: held models .+ training step .+ AdamW moments .+ generation .+KV cache", run.MemoryPlan);
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

        // Metrics: the run's committed round metrics with its id as a label, phase times, token counters, memory.
        await scraped;
        await RunProbe.WaitForAsync(client, other.Id, r => r.Status == "completed", TimeSpan.FromMinutes(3));
        await ScrapeUntilAsync(cluster.Silos[0].MetricsPort, "onlinealign_phase_duration_seconds_count", "phase=\"generate\"", $"run_id=\"{runId}\"");
        await ScrapeUntilAsync(cluster.Silos[0].MetricsPort, "onlinealign_generated_tokens_total", $"run_id=\"{runId}\"");
        await ScrapeUntilAsync(cluster.Silos[0].MetricsPort, "onlinealign_trained_tokens_total", $"run_id=\"{runId}\"");
        await ScrapeUntilAsync(cluster.Silos[0].MetricsPort, "onlinealign_process_memory_bytes", "kind=\"resident\"");
        using (var http = new HttpClient())
            Assert.Contains("<html", await http.GetStringAsync($"http://127.0.0.1:{cluster.Silos[0].MetricsPort}/dashboard"), StringComparison.OrdinalIgnoreCase);

        // Every round's and every training step's metrics, for pandas.
        var csv = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "metrics", "--api", api, runId, "--format", "csv");
        Assert.True(csv.ExitCode == 0, csv.Stderr);
        var lines = csv.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var header = lines[0].Split(',');
        Assert.Equal(["run_id", "kind", "round", "step"], header[..4]);
        Assert.Contains("loss", header);
        Assert.Contains("eval/accuracy", header);
        Assert.Equal(3, lines.Count(l => l.Split(',')[1] == "round")); // rounds 0, 1, 2
        var stepRows = lines.Where(l => l.Split(',')[1] == "step").Select(l => l.Split(',')).ToList();
        Assert.NotEmpty(stepRows);
        Assert.All(stepRows, r => Assert.True(double.IsFinite(double.Parse(r[Array.IndexOf(header, "loss")], System.Globalization.CultureInfo.InvariantCulture))));
        var steps = await client.ListStepsAsync(new ListStepsRequest { RunId = runId });
        Assert.Equal(steps.Steps.Count, stepRows.Count);
        foreach (int round in new[] { 1, 2 }) // each round's optimiser steps, numbered from 0
        {
            var numbers = steps.Steps.Where(s => s.Round == round).Select(s => s.Step).ToList();
            Assert.Equal(Enumerable.Range(0, numbers.Count), numbers);
            Assert.NotEmpty(numbers);
        }
        Assert.All(steps.Steps, s => Assert.Contains("grad_norm", s.Metrics.Keys));
        var jsonl = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "metrics", "--api", api, runId, "--format", "jsonl");
        var first = System.Text.Json.JsonDocument.Parse(jsonl.Stdout.Split('\n').First(l => l.Contains("\"kind\":\"step\""))).RootElement;
        Assert.Equal(0, first.GetProperty("step").GetInt32());
        Assert.True(first.GetProperty("loss").GetDouble() > 0);
        var compare = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "compare", "--api", api, runId, other.Id, "--out", Path.Combine(exportFolder, "compare.png"));
        Assert.True(compare.ExitCode == 0, compare.Stderr);
        Assert.Contains(other.Id, compare.Stdout);
        Assert.Contains("eval/accuracy", compare.Stdout);
        Assert.True(new FileInfo(Path.Combine(exportFolder, "compare.png")).Length > 10_000);

        string chart = Path.Combine(exportFolder, "chart.png");
        var plot = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "plot", "--api", api, runId, "--out", chart);
        Assert.True(plot.ExitCode == 0, plot.Stderr);
        Assert.True(new FileInfo(chart).Length > 10_000);
    }

    /// <summary>
    /// GETs /metrics until a series of the metric carries all the labels (in any order); returns that line. The
    /// deadline only bounds a test that went wrong.
    /// </summary>
    private static async Task<string> ScrapeUntilAsync(int port, string metric, params string[] labels)
    {
        using var http = new HttpClient();
        var deadline = DateTime.UtcNow.AddMinutes(8); // from the run's start, beside another run on the same silo
        while (true)
        {
            string body = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
            var line = body.Split('\n').FirstOrDefault(l => l.StartsWith(metric + "{", StringComparison.Ordinal) && labels.All(l.Contains));
            if (line is not null) return line;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"/metrics never held {metric} with {string.Join(", ", labels)}:\n{body}");
            await Task.Delay(500);
        }
    }
}
