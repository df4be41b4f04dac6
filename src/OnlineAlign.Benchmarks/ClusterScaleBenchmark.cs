using System.Diagnostics;
using System.Globalization;
using OnlineAlign.Api.V1;
using OnlineAlign.Cli.Client;
using OnlineAlign.Cli.Local;
using OnlineAlign.Storage;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// `cluster scale`: the same run on a control silo plus 1, then 2 (--silos), GPU-tagged CPU silos, each silo its own
/// process with one torch thread, each count on a fresh cluster (no warm checkpoint cache carried over); the spec's
/// replica count is the GPU silo count. Reports each phase's time (its slowest shard plus the merge) and the round's
/// wall time per silo count, and the speed-up over the first count.
/// </summary>
public static class ClusterScaleBenchmark
{
    private static readonly string[] Phases = ["generate", "judge", "pairs", "train", "evaluate"];
    private static readonly int[] DefaultSilos = [1, 2];

    public static async Task RunAsync(ClusterBenchmark.Settings s, Func<int, RunSpec> spec, string data, TextWriter report)
    {
        int[] counts = s.Silos is { Length: > 0 } given ? given : DefaultSilos;
        report.WriteLine($"clusters: Azurite + 1 control silo + {string.Join(" / ", counts)} GPU-tagged CPU silos (Silo:TorchThreads 1 each); " +
            $"spec: {s.Rounds} rounds x {s.Prompts} prompts x {s.Samples} samples, {s.NewTokens} new tokens, model {s.Model}, replicas = GPU silos");
        report.WriteLine($"load average before: {LoadAverage()}");
        var results = new List<(int Silos, List<RoundMetrics> Rounds)>();
        var cpu = new List<(int Silos, PhaseCpu Cpu)>();
        foreach (int n in counts)
        {
            await using var cluster = await ScaleCluster.StartAsync(Path.Combine(data, $"silos-{n}"), n);
            var client = ApiConnection.Client(cluster.ApiAddress, null);
            var sampler = new PhaseCpu(cluster.Processes.Append(("bench", Environment.ProcessId)).ToList());
            await sampler.IdleAsync(TimeSpan.FromSeconds(5));
            var run = await client.StartRunAsync(new StartRunRequest { Spec = spec(n) });
            var done = ClusterBenchmark.WaitToEnd(client, run.Id);
            await sampler.SampleAsync(client, run.Id, done);
            results.Add((n, await done));
            cpu.Add((n, sampler));
            // This cluster's phases at once, so a run stopped at its time cap still leaves the counts it finished.
            var rounds = results[^1].Rounds;
            report.WriteLine($"{n} GPU silo(s): done; load average now {LoadAverage()}; mean over the rounds, seconds: " +
                             string.Join(", ", Phases.Append("round").Select(p => $"{p} {Mean(rounds, p, overhead: false):F2}")));
        }
        report.WriteLine("mean over the rounds, seconds: the phase's compute (slowest shard + merge; data-parallel training: plus its " +
                         "gradient exchange) | with the grain-call overhead; " +
                         "speed-up against " + counts[0] + " GPU silo(s)");
        report.WriteLine($"{"phase",-10}" + string.Join("", results.Select(r => $"{r.Silos + " silo(s)",24}")) +
                         string.Join("", results.Skip(1).Select(r => $"{"speed-up x" + r.Silos,22}")));
        foreach (var phase in Phases.Append("round"))
        {
            var times = results.Select(r => (Compute: Mean(r.Rounds, phase, overhead: false), Wall: Mean(r.Rounds, phase, overhead: true))).ToList();
            report.WriteLine($"{phase,-10}" + string.Join("", times.Select(t => $"{t.Compute,11:F2} | {t.Wall,10:F2}")) +
                             string.Join("", times.Skip(1).Select(t => $"{times[0].Compute / t.Compute,10:F2} | {times[0].Wall / t.Wall,9:F2}")));
        }
        foreach (var (n, rounds) in results)
            report.WriteLine($"{n} GPU silo(s): shards per phase (last round) " + string.Join(", ", Phases.Select(p =>
                $"{p} {(rounds[^1].Metrics.TryGetValue($"shards/{p}/count", out var c) ? c : 1).ToString(CultureInfo.InvariantCulture)}")));
        ReportBreakdown(results, report);
        foreach (var (n, sampler) in cpu) sampler.Report(report, $"{n} GPU silo(s)");
        foreach (var (n, sampler) in cpu) sampler.ReportThreads(report, $"{n} GPU silo(s)");
    }

    /// <summary>
    /// Each phase's time taken apart (means over the rounds, seconds): its slowest and mean shard's compute, the merge's compute
    /// on replica 0 (the phase's compute less its slowest shard), the worker's storage time (checkpoint fetches, phase blob reads
    /// and writes, done markers: slowest shard plus merge) and the grain calls' overhead; then what no phase accounts for.
    /// </summary>
    private static void ReportBreakdown(List<(int Silos, List<RoundMetrics> Rounds)> results, TextWriter report)
    {
        report.WriteLine("per phase, seconds: slowest shard | mean shard | merge (compute on replica 0) | storage (slowest shard + merge) | " +
                         "of which the merge's | call overhead (compute alone: a data-parallel train phase's exchange is on its own line below)");
        foreach (var (n, rounds) in results)
            foreach (var phase in Phases)
            {
                double M(string key) => rounds.Average(r => r.Metrics.GetValueOrDefault(key));
                double slowest = M($"shards/{phase}/slowest_seconds"), total = M($"time/{phase}");
                bool sharded = M($"shards/{phase}/count") > 1;
                double mean = sharded ? M($"shards/{phase}/mean_seconds") : total;
                report.WriteLine($"{n} silo(s) {phase,-9} {(sharded ? slowest : total),7:F2} | {mean,7:F2} | " +
                                 $"{(sharded && phase != "generate" ? total - slowest : 0),7:F2} | {M($"shards/{phase}/storage_seconds"),7:F2} | " +
                                 $"{M($"shards/{phase}/merge_storage_seconds"),7:F2} | {M($"time/overhead/{phase}"),7:F2}");
            }
        // Round by round, each phase's compute: the first round on a fresh silo process also pays its JIT compilation (each
        // process compiles its own code).
        foreach (var (n, rounds) in results)
            foreach (var r in rounds)
                report.WriteLine($"{n} silo(s) round {r.Round} (compute): " + string.Join(", ", Phases.Select(p => $"{p} {r.Metrics.GetValueOrDefault($"time/{p}"):F2}"))
                                 + $", round {r.Metrics.GetValueOrDefault("time/round"):F2} s");
        // Data-parallel training (optimizer.data_parallel): replica 0's wait for and exchange with the other replicas.
        foreach (var (n, rounds) in results.Where(r => r.Rounds.Any(x => x.Metrics.ContainsKey("time/exchange"))))
            report.WriteLine($"{n} silo(s): train phase's gradient exchange (replica 0 waiting for and exchanging with the others) " +
                             $"{rounds.Average(r => r.Metrics.GetValueOrDefault("time/exchange")):F2} s beside its own compute " +
                             $"{rounds.Average(r => r.Metrics.GetValueOrDefault("time/train")):F2} s (the phase's time above counts both)");
        // Evaluation's shards beyond replica 0 start once their replica copied the trained checkpoint from the trainer, or
        // (the copy off or failed) once it is durable (part of its call overhead).
        foreach (var (n, rounds) in results.Where(r => r.Rounds.Any(x => x.Metrics.ContainsKey("shards/evaluate/checkpoint_wait_seconds"))))
            report.WriteLine($"{n} silo(s): evaluation's other shards waited for the trained checkpoint's upload " +
                             $"{rounds.Average(r => r.Metrics.GetValueOrDefault("shards/evaluate/checkpoint_wait_seconds")):F2} s, copied it from the trainer " +
                             $"{rounds.Average(r => r.Metrics.GetValueOrDefault("shards/evaluate/checkpoint_copy_seconds")):F2} s " +
                             $"(in {rounds.Count(r => r.Metrics.ContainsKey("shards/evaluate/checkpoint_copy_seconds"))} of {rounds.Count} rounds)");
        foreach (var (n, rounds) in results)
            report.WriteLine($"{n} silo(s): storage (all phases) {rounds.Average(r => r.Metrics.GetValueOrDefault("time/storage")):F2} s, " +
                             $"checkpoint upload {rounds.Average(r => r.Metrics.GetValueOrDefault("time/checkpoint")):F2} s, " +
                             "orchestration (state writes, placement, scheduling) " +
                             $"{rounds.Average(r => r.Metrics.GetValueOrDefault("time/orchestration")):F2} s");
    }

    /// <summary>
    /// time/{phase} (and time/overhead/{phase}) averaged over the rounds; "round" is time/round, the round's wall time. A
    /// data-parallel train phase also counts time/exchange: replica 0's wait for and exchange with the other replicas lies
    /// between its own tensor work (time/train), so the phase took both.
    /// </summary>
    private static double Mean(List<RoundMetrics> rounds, string phase, bool overhead) => rounds.Average(r =>
        phase == "round" ? r.Metrics["time/round"]
        : r.Metrics.GetValueOrDefault($"time/{phase}") + (phase == "train" ? r.Metrics.GetValueOrDefault("time/exchange") : 0)
          + (overhead ? r.Metrics.GetValueOrDefault($"time/overhead/{phase}") : 0));

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    /// <summary>Azurite, one control silo (the API and the orchestrator) and N GPU-tagged silos, as child processes on loopback.</summary>
    private sealed class ScaleCluster : IAsyncDisposable
    {
        private readonly List<Process> _silos = new();
        private AzuriteProcess? _azurite;
        public string ApiAddress { get; private set; } = "";

        /// <summary>Azurite, the control silo and the GPU silos, by name, for CPU accounting.</summary>
        public IEnumerable<(string Name, int Pid)> Processes =>
            _silos.Select((p, i) => (i == 0 ? "control" : $"gpu-{i}", p.Id)).Prepend(("azurite", _azurite!.ProcessId));

        public static async Task<ScaleCluster> StartAsync(string data, int gpuSilos)
        {
            var cluster = new ScaleCluster();
            try
            {
                cluster._azurite = await AzuriteProcess.StartAsync(Path.Combine(data, "azurite"));
                string clusterId = "scale-" + Guid.NewGuid().ToString("N")[..8];
                var metricsPorts = new List<int>();
                foreach (var (role, i) in Enumerable.Repeat("gpu", gpuSilos).Prepend("control").Select((r, i) => (r, i)))
                {
                    var ports = SiloLifecycle.FreePorts(4);
                    var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
                    info.ArgumentList.Add(LocalCluster.SiloDll());
                    info.ArgumentList.Add("--role");
                    info.ArgumentList.Add(role);
                    var env = info.Environment;
                    env["ONLINEALIGN_STORAGE"] = cluster._azurite.ConnectionString;
                    env["Silo__ClusterId"] = clusterId;
                    env["Silo__SiloPort"] = ports[0].ToString(CultureInfo.InvariantCulture);
                    env["Silo__GatewayPort"] = ports[1].ToString(CultureInfo.InvariantCulture);
                    env["Api__Port"] = ports[2].ToString(CultureInfo.InvariantCulture);
                    env["Observability__Port"] = ports[3].ToString(CultureInfo.InvariantCulture);
                    env["Silo__Device"] = "cpu";
                    env["Silo__TorchThreads"] = "1";
                    env["Silo__DataFolder"] = Path.Combine(data, $"silo-{i}");
                    env["Silo__DataRoots__0"] = data;
                    env["Silo__DataRoots__1"] = Path.GetTempPath();
                    env["Logging__LogLevel__Default"] = "Warning";
                    var silo = Process.Start(info)!;
                    silo.OutputDataReceived += (_, _) => { };
                    silo.ErrorDataReceived += (_, _) => { };
                    silo.BeginOutputReadLine();
                    silo.BeginErrorReadLine();
                    cluster._silos.Add(silo);
                    string api = $"http://127.0.0.1:{ports[2]}";
                    await SiloLifecycle.WaitUntilServingAsync(silo, api, TimeSpan.FromMinutes(3), () => $"{role} silo {i}");
                    if (i == 0) cluster.ApiAddress = api;
                    metricsPorts.Add(ports[3]);
                }
                // Figures taken while two replicas share a silo would measure one silo, not two.
                await SiloLifecycle.WaitUntilEverySiloSeesGpuSilosAsync(metricsPorts, gpuSilos, TimeSpan.FromMinutes(2));
                return cluster;
            }
            catch
            {
                await cluster.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var silo in Enumerable.Reverse(_silos))
            {
                await SiloLifecycle.StopAsync(silo, TimeSpan.FromSeconds(15));
                silo.Dispose();
            }
            if (_azurite is not null) await _azurite.DisposeAsync();
        }
    }
}
