using System.Globalization;
using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Cli.Client;
using OnlineAlign.Cli.Local;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// Rounds through the real cluster (Azurite + one `all` silo process, as the main job runs them): where a
/// round's time goes, how it grows with prompts, samples and replicas, and what API load does to it.
/// </summary>
public static class ClusterBenchmark
{
    public sealed record Settings(string Model, int Rounds, int Prompts, int Samples, int NewTokens, int SftSteps, int Watchers,
        int GetRunsPerSecond, int LoadSeconds, int Runs = 2000, int[]? Silos = null, int LoraRank = 0, bool CarryState = false,
        int EvalPrompts = 100, int BatchSize = 0, int Accumulation = 1, string DataParallel = "");

    /// <summary>The built-in tiny model, or a random-weight model of a benchmark shape saved as a Hugging Face folder.</summary>
    private static string? _modelFolder;

    internal static RunSpec Spec(Settings s, int? prompts = null, int? samples = null, int replicas = 1) => new()
    {
        Name = "bench", Rounds = s.Rounds, PromptsPerRound = prompts ?? s.Prompts, SamplesPerPrompt = samples ?? s.Samples,
        SftSteps = s.SftSteps, Seed = 1, Device = "cpu", GenerationReplicas = replicas,
        Model = Model(s),
        Sampling = new SamplingSpec { MaxNewTokens = s.NewTokens },
        Prompts = new PromptSpec { Task = "sort", EvalPrompts = s.EvalPrompts },
        // The judge and loss every figure in docs/benchmarks.md was measured with (the default until 2026-12-05): the LLM
        // judge's passes plus the implicit reward's two, so the figures stay comparable across releases.
        Judge = new JudgeSpec { Kind = "self_consistent" }, Loss = new LossSpec { Kind = "dpo" },
        Optimizer = Optimizer(s),
    };

    /// <summary>The spec's optimizer section where a flag changes it (null: the spec's defaults, as every earlier figure ran).</summary>
    private static OptimizerSpec? Optimizer(Settings s)
    {
        if (!s.CarryState && s.BatchSize == 0 && s.Accumulation == 1 && s.DataParallel == "") return null;
        var o = new OptimizerSpec { CarryState = s.CarryState, GradientAccumulation = s.Accumulation };
        if (s.BatchSize > 0) o.BatchSize = s.BatchSize;
        if (s.DataParallel != "") o.DataParallel = s.DataParallel;
        return o;
    }

    /// <summary>The benchmark's model, with a LoRA adapter of rank <see cref="Settings.LoraRank"/> (0: full fine-tuning).</summary>
    private static ModelSpec Model(Settings s)
    {
        var model = _modelFolder is null ? new ModelSpec { Builtin = s.Model } : new ModelSpec { HfFolder = _modelFolder };
        if (s.LoraRank > 0) model.Lora = new LoraSpec { R = s.LoraRank, Alpha = 2 * s.LoraRank };
        return model;
    }

    private static readonly string[] Split =
        ["generate", "judge", "pairs", "train", "evaluate", "checkpoint", "storage", "overhead", "orchestration"];

    public static async Task RunAsync(string what, Settings s, TextWriter report)
    {
        string data = Path.Combine(Path.GetTempPath(), "onlinealign-bench-" + Guid.NewGuid().ToString("N")[..8]);
        if (s.Model != "tiny")
        {
            _modelFolder = Path.Combine(data, "model");
            using var model = OnlineAlign.Modeling.BuiltinModels.Create(ModelShapes.ByName(s.Model), 1);
            OnlineAlign.Modeling.Checkpoints.HfCheckpoint.Save(model, _modelFolder, new OnlineAlign.Modeling.Tokenization.ByteTokenizer().HfFiles());
        }
        if (what == "scale")
        {
            // Its own clusters: a control silo and 1, then 2, GPU-tagged silos (ClusterScaleBenchmark).
            await ClusterScaleBenchmark.RunAsync(s, n => Spec(s, replicas: n), data, report);
            return;
        }
        await using var cluster = await LocalCluster.StartAsync(data, _ => { }, CancellationToken.None);
        var client = ApiConnection.Client(cluster.ApiAddress, null);
        report.WriteLine($"cluster: Azurite + 1 'all' silo (CPU); spec: {s.Rounds} rounds x {s.Prompts} prompts x {s.Samples} samples, " +
            $"{s.NewTokens} new tokens, {s.EvalPrompts} evaluation prompts, model {s.Model}; silo log: {Path.Combine(data, "silo.log")}");
        switch (what)
        {
            case "phases":
                var rounds = await RunToEnd(client, Spec(s));
                ReportSplit(rounds, report);
                ReportThroughput(rounds, s, report);
                EarlyGenerationReport.Write(rounds, Path.Combine(data, "silo.log"), report);
                report.WriteLine($"silo peak resident memory (VmHWM): {PeakMegabytes(cluster.SiloProcessId):F0} MB");
                break;
            case "scaling":
                foreach (int p in new[] { s.Prompts / 2, s.Prompts, s.Prompts * 2 })
                    report.WriteLine($"prompts/round {p,4}: round {Mean(await RunToEnd(client, Spec(s, prompts: p)), "time/round"):F2} s");
                foreach (int n in new[] { 2, 4, 8 })
                    report.WriteLine($"samples/prompt {n,3}: round {Mean(await RunToEnd(client, Spec(s, samples: n)), "time/round"):F2} s");
                foreach (int r in new[] { 1, 2 })
                {
                    var replicated = await RunToEnd(client, Spec(s, replicas: r));
                    report.WriteLine($"generation replicas {r}: round {Mean(replicated, "time/round"):F2} s, generate " +
                        $"{Mean(replicated, "time/generate"):F2} s (replicas share this silo's 2 cores)");
                }
                break;
            case "load":
                await Load(client, s, report);
                break;
            case "list":
                await ListMany(client, s.Runs, report);
                break;
            default:
                throw new ArgumentException($"cluster benchmark '{what}' is not one of phases, scaling, load, list, scale");
        }
    }

    /// <summary>
    /// ListRuns with thousands of runs: starts that many (each cancelled at once, so the cluster's run limit is never
    /// reached), then times the first, a middle and the last page, and paging through all of them.
    /// </summary>
    private static async Task ListMany(Runs.RunsClient client, int runs, TextWriter report)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var spec = new RunSpec { Name = "list", Rounds = 1, PromptsPerRound = 8, SamplesPerPrompt = 2, SftSteps = 10, Device = "cpu" };
        for (int i = 0; i < runs; i++)
        {
            var run = await client.StartRunAsync(new StartRunRequest { Spec = spec });
            await client.CancelRunAsync(new RunRef { RunId = run.Id });
        }
        report.WriteLine($"{runs} runs started and cancelled in {clock.Elapsed.TotalSeconds:F0} s");
        async Task<double> Page(string token, int size)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var page = await client.ListRunsAsync(new ListRunsRequest { PageSize = size, PageToken = token });
            if (page.TotalRuns < runs) throw new InvalidOperationException($"ListRuns saw {page.TotalRuns} runs");
            return watch.Elapsed.TotalMilliseconds;
        }
        foreach (int size in new[] { 100, 1000 })
            report.WriteLine($"ListRuns page_size {size}: first page {await Page("", size):F0} ms, middle " +
                $"{await Page((runs / 2).ToString(CultureInfo.InvariantCulture), size):F0} ms, " +
                             $"last {await Page(Math.Max(0, runs - size).ToString(CultureInfo.InvariantCulture), size):F0} ms (warm: again " +
                                 $"{await Page("", size):F0} ms)");
        clock.Restart();
        int seen = 0, pages = 0;
        for (string token = ""; ; pages++)
        {
            var page = await client.ListRunsAsync(new ListRunsRequest { PageSize = 100, PageToken = token });
            seen += page.Runs.Count;
            if ((token = page.NextPageToken) == "") break;
        }
        report.WriteLine($"all {seen} runs in {pages + 1} pages of 100: {clock.Elapsed.TotalSeconds:F2} s");
    }

    internal static async Task<List<RoundMetrics>> RunToEnd(Runs.RunsClient client, RunSpec spec) =>
        await WaitToEnd(client, (await client.StartRunAsync(new StartRunRequest { Spec = spec })).Id);

    /// <summary>Waits for a run to complete, then lists its rounds; a run that stops otherwise throws with its error.</summary>
    internal static async Task<List<RoundMetrics>> WaitToEnd(Runs.RunsClient client, string runId)
    {
        while (true)
        {
            await Task.Delay(500);
            var status = await client.GetRunAsync(new GetRunRequest { RunId = runId });
            if (status.Status == "completed") break;
            if (status.Status is "failed" or "paused" or "cancelled") throw new InvalidOperationException($"run {status.Status}: {status.Error}");
        }
        return (await client.ListRoundsAsync(new ListRoundsRequest { RunId = runId })).Rounds.ToList();
    }

    private static double Mean(List<RoundMetrics> rounds, string key) => rounds.Average(r => r.Metrics.TryGetValue(key, out var v) ? v : 0);

    private static double Part(RoundMetrics r, string part) => part == "overhead"
        ? r.Metrics.Where(kv => kv.Key.StartsWith("time/overhead/", StringComparison.Ordinal)).Sum(kv => kv.Value)
        : r.Metrics.TryGetValue("time/" + part, out var v) ? v : 0;

    private static void ReportSplit(List<RoundMetrics> rounds, TextWriter report)
    {
        report.WriteLine($"{"round",5} {"wall s",8} " + string.Join(" ", Split.Select(p => $"{p,13}")));
        foreach (var r in rounds)
        {
            double wall = r.Metrics["time/round"];
            report.WriteLine($"{r.Round,5} {wall,8:F2} " + string.Join(" ", Split.Select(p => $"{Part(r, p),6:F3} {100 * Part(r, p) / wall,5:F1}%")));
        }
        double total = rounds.Sum(r => r.Metrics["time/round"]);
        double notInPhases = rounds.Sum(r => Part(r, "overhead") + Part(r, "orchestration"));
        report.WriteLine($"not in any phase (grain-call overhead + orchestration): {notInPhases:F3} s of {total:F2} s = {100 * notInPhases / total:F2}%");
        foreach (var phase in new[] { "generate", "judge", "pairs", "train", "evaluate" })
            report.WriteLine($"grain-call overhead {phase,-9} " +
                $"{1000 * rounds.Average(r => r.Metrics.TryGetValue($"time/overhead/{phase}", out var v) ? v : 0),7:F1} ms per round");
    }

    private static void ReportThroughput(List<RoundMetrics> rounds, Settings s, TextWriter report)
    {
        foreach (var r in rounds)
        {
            double generated = s.Prompts * s.Samples * r.Metrics["generation/length_mean"];
            double trained = r.Metrics["pairs/kept"] * (r.Metrics["lengths/chosen"] + r.Metrics["lengths/rejected"]);
            report.WriteLine($"round {r.Round}: generation {generated / r.Metrics["time/generate"],8:F0} new tokens/s; " +
                             $"training {trained / Math.Max(1e-9, r.Metrics["time/train"]),8:F0} response tokens/s ({r.Metrics["pairs/kept"]} pairs)");
        }
        // Where the train phase's time goes: the private copy of P_r (time/train/load), the steps, the folder's write
        // (time/train/save), the upload's own time (checkpoint/upload_seconds, behind the evaluation where overlapped) and what the
        // round waited for it (time/checkpoint: the hashing, and the wait at the commit); then the evaluate phase.
        foreach (var r in rounds)
        {
            double M(string key) => r.Metrics.TryGetValue(key, out var v) ? v : double.NaN;
            double load = M("time/train/load"), save = M("time/train/save");
            report.WriteLine($"round {r.Round} train phase: {M("time/train"):F3} s (load {load:F3} s, steps {M("time/train") - load - save:F3} s, " +
                             $"save {save:F3} s), upload {M("checkpoint/upload_seconds"):F3} s (waited for {M("time/checkpoint"):F3} s); " +
                             $"evaluate {M("time/evaluate"):F3} s");
        }
    }

    private static double PeakMegabytes(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line is null ? double.NaN : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
    }

    /// <summary>The same run alone, then under API load (watch streams + GetRun calls), then alone again.</summary>
    private static async Task Load(Runs.RunsClient client, Settings s, TextWriter report)
    {
        double before = Mean(await RunToEnd(client, Spec(s)), "time/round");
        var run = await client.StartRunAsync(new StartRunRequest { Spec = Spec(s) });
        using var stop = new CancellationTokenSource();
        int errors = 0;
        long events = 0, calls = 0;
        var watchers = Enumerable.Range(0, s.Watchers).Select(async _ =>
        {
            try
            {
                using var stream = client.WatchRun(new WatchRunRequest { RunId = run.Id }, cancellationToken: stop.Token);
                while (await stream.ResponseStream.MoveNext(stop.Token)) Interlocked.Increment(ref events);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled) { }
            catch (OperationCanceledException) { }
            catch (Exception) { Interlocked.Increment(ref errors); }
        }).ToList();
        var loadClock = System.Diagnostics.Stopwatch.StartNew();
        const int pollers = 20;
        var polling = Enumerable.Range(0, pollers).Select(async _ =>
        {
            var period = TimeSpan.FromSeconds((double)pollers / s.GetRunsPerSecond);
            var next = DateTime.UtcNow;
            while (!stop.IsCancellationRequested)
            {
                try { await client.GetRunAsync(new GetRunRequest { RunId = run.Id }); Interlocked.Increment(ref calls); }
                catch (Exception) { Interlocked.Increment(ref errors); }
                next += period;
                var wait = next - DateTime.UtcNow;
                if (wait > TimeSpan.Zero) await Task.Delay(wait);
            }
        }).ToList();
        while (true)
        {
            await Task.Delay(500);
            var status = await client.GetRunAsync(new GetRunRequest { RunId = run.Id });
            if (status.Status == "completed" && loadClock.Elapsed.TotalSeconds >= s.LoadSeconds) break;
            if (status.Status is "failed" or "paused" or "cancelled") throw new InvalidOperationException($"run {status.Status}: {status.Error}");
        }
        double seconds = loadClock.Elapsed.TotalSeconds;
        stop.Cancel();
        await Task.WhenAll(watchers.Concat(polling));
        double loaded = Mean((await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds.ToList(), "time/round");
        double after = Mean(await RunToEnd(client, Spec(s)), "time/round");
        double baseline = (before + after) / 2;
        report.WriteLine($"load: {s.Watchers} WatchRun streams ({events} events) + GetRun at {calls / seconds:F0}/s ({calls} calls) for " +
            $"{seconds:F0} s; errors: {errors}");
        report.WriteLine($"mean round wall time: alone {before:F2} s, under load {loaded:F2} s, alone again {after:F2} s: " +
            $"{100 * (loaded - baseline) / baseline:+0.0;-0.0}% vs the mean of the two unloaded runs");
    }
}
