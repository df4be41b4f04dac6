using System.Diagnostics;
using System.Globalization;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Scoring;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// `scale-ceiling`: what this machine allows any 2-silo speed-up to be. The torch work of a `cluster scale` round's
/// sharded phases (the built-in model's generation, and its no-grad forward over prompt + response, which is what the
/// judges and the reference log-probs run), one torch thread a process, in 1 process and then in N processes at once,
/// each for the same wall time once every process has loaded and warmed up (a barrier over stdin). The ratio of the N
/// processes' summed throughput to the 1 process's is the ceiling of a sharded phase's speed-up on N silos here, with no
/// Orleans, storage or merge in the way; CPU seconds per unit of work shows how much slower each process runs beside the others.
/// </summary>
public static class ScaleCeilingBenchmark
{
    public sealed record Settings(string Model, int Processes, int Batch, int PromptTokens, int NewTokens, double Seconds, int Repeats, string[] Work);

    private const string WorkerCommand = "scale-ceiling-worker";

    public static async Task RunAsync(Settings s, TextWriter report)
    {
        report.WriteLine($"model {s.Model}, {s.Batch} rows a call, {s.PromptTokens}-token prompts, {s.NewTokens} new tokens (generate) / " +
                         $"{s.PromptTokens + s.NewTokens}-token rows (forward); one torch thread a process; {s.Seconds:F0} s a measurement; " +
                         $"1 then {s.Processes} processes at once, {s.Repeats} time(s)");
        var ratios = s.Work.ToDictionary(w => w, _ => new List<(double Throughput, double Cpu)>(), StringComparer.Ordinal);
        for (int repeat = 1; repeat <= s.Repeats; repeat++)
        {
            report.WriteLine($"repeat {repeat}: load average before {LoadAverage()}");
            var one = await MeasureAsync(s, 1);
            var many = await MeasureAsync(s, s.Processes);
            foreach (string work in s.Work)
            {
                var (a, b) = (Summary.Of(one[work]), Summary.Of(many[work]));
                ratios[work].Add((b.Rate / a.Rate, b.CpuPerUnit / a.CpuPerUnit));
                report.WriteLine($"  {work,-8} 1 process {a.Rate,8:F0} {Unit(work)}/s, {a.CpuPerUnit * 1e6:F1} CPU us each, {a.Cores:F2} cores busy | " +
                                 $"{s.Processes} processes {string.Join(" + ", many[work].Select(r => r.Rate.ToString("F0", CultureInfo.InvariantCulture)))} = " +
                                 $"{b.Rate,8:F0} {Unit(work)}/s, {b.CpuPerUnit * 1e6:F1} CPU us each, {b.Cores:F2} cores busy | " +
                                 $"throughput x{b.Rate / a.Rate:F2}, CPU per unit x{b.CpuPerUnit / a.CpuPerUnit:F2}");
            }
            report.WriteLine($"  load average after {LoadAverage()}");
        }
        // Throughput follows the CPU the processes were given: on a busy machine the scheduler's share, not the hardware. CPU
        // per unit is what sharing the machine (caches, memory bandwidth, the host's other guests) costs each unit of work:
        // with a whole core per process, N processes would do N / (that ratio) times the work of one.
        foreach (var (work, list) in ratios)
            report.WriteLine($"{work}: {s.Processes} processes against 1: throughput x{Join(list.Select(r => r.Throughput))}; " +
                             $"CPU per unit x{Join(list.Select(r => r.Cpu))}; with a whole core each (N / CPU ratio) x{Join(list.Select(r => s.Processes / r.Cpu))}");
    }

    private static string Join(IEnumerable<double> values) => string.Join(", x", values.Select(v => v.ToString("F2", CultureInfo.InvariantCulture)));

    /// <summary>Processes measured together: summed throughput, CPU seconds per unit, and the cores they kept busy.</summary>
    private sealed record Summary(double Rate, double CpuPerUnit, double Cores)
    {
        public static Summary Of(List<Result> results) => new(results.Sum(r => r.Rate), results.Sum(r => r.CpuSeconds) / results.Sum(r => r.Units),
            results.Sum(r => r.CpuSeconds / r.Seconds));
    }

    private static string Unit(string work) => work == "generate" ? "new tokens" : "tokens";

    private sealed record Result(double Units, double Seconds, double CpuSeconds)
    {
        public double Rate => Units / Seconds;
    }

    /// <summary>N worker processes: each loads and warms up, then all start each work at once and run it for the same time.</summary>
    private static async Task<Dictionary<string, List<Result>>> MeasureAsync(Settings s, int processes)
    {
        var workers = Enumerable.Range(0, processes).Select(_ => Start(s)).ToList();
        try
        {
            var results = new Dictionary<string, List<Result>>(StringComparer.Ordinal);
            foreach (string work in s.Work)
            {
                foreach (var w in workers) await Expect(w, "ready");
                foreach (var w in workers) await w.StandardInput.WriteLineAsync(work);
                var lines = await Task.WhenAll(workers.Select(w => Expect(w, "done")));
                results[work] = lines.Select(line =>
                {
                    var f = line.Split(' ').Skip(1).Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
                    return new Result(f[0], f[1], f[2]);
                }).ToList();
            }
            foreach (var w in workers) await w.StandardInput.WriteLineAsync("end");
            foreach (var w in workers) await w.WaitForExitAsync();
            return results;
        }
        finally
        {
            foreach (var w in workers)
            {
                if (!w.HasExited) w.Kill(entireProcessTree: true);
                w.Dispose();
            }
        }
    }

    private static Process Start(Settings s)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = false,
        };
        info.ArgumentList.Add(typeof(ScaleCeilingBenchmark).Assembly.Location);
        foreach (string arg in new[]
                 {
                     WorkerCommand, "--threads", "1", "--model", s.Model, "--batch", Invariant(s.Batch), "--prompt", Invariant(s.PromptTokens),
                     "--new", Invariant(s.NewTokens), "--seconds", s.Seconds.ToString(CultureInfo.InvariantCulture),
                 })
            info.ArgumentList.Add(arg);
        // One thread for every native pool too, as Silo:TorchThreads 1 gives a silo.
        info.Environment["OMP_NUM_THREADS"] = "1";
        info.Environment["MKL_NUM_THREADS"] = "1";
        // Compiled as a silo compiles (OnlineAlign.Silo.csproj): once, optimised, no background recompiles beside the work.
        info.Environment["DOTNET_TieredCompilation"] = "0";
        return Process.Start(info)!;
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>The worker's next line that starts with the word (the rest of its output is the benchmark banner).</summary>
    private static async Task<string> Expect(Process worker, string word)
    {
        while (await worker.StandardOutput.ReadLineAsync() is { } line)
            if (line.StartsWith(word + " ", StringComparison.Ordinal) || line == word) return line;
        throw new InvalidOperationException($"a worker process exited (code {(worker.HasExited ? worker.ExitCode : -1)}) before saying '{word}'");
    }

    /// <summary>
    /// The worker: loads the model, warms up both kinds of work, then for each work named on stdin runs it for the set
    /// time and answers "done UNITS SECONDS CPU_SECONDS"; "end" ends it.
    /// </summary>
    public static void Worker(Settings s)
    {
        var config = BuiltinModels.Names.Contains(s.Model) ? BuiltinModels.ByName(s.Model) : ModelShapes.ByName(s.Model);
        using var model = BuiltinModels.Create(config, seed: 0);
        model.eval();
        var random = new Random(0);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => random.Next(3, config.VocabSize)).ToArray();
        var prompts = Enumerable.Range(0, s.Batch).Select(_ => Tokens(s.PromptTokens)).ToList();
        var rows = prompts.Select(p => new PromptResponse(p, Tokens(s.NewTokens))).ToList();
        // Sampling with no stop token: every row makes every new token, so each call is the same work.
        var options = new SamplingOptions { MaxNewTokens = s.NewTokens, Temperature = 1.0, Seed = 1, PadTokenId = config.PadTokenId };
        double Once(string work) => work == "generate"
            ? TextGenerator.Generate(model, prompts, options).Sum(c => (double)c.Tokens.Length)
            : ResponseLogProbs.Score(model, rows, chunkSize: rows.Count).Count * (double)(s.PromptTokens + s.NewTokens);
        Once("generate");
        Once("forward");
        var self = Process.GetCurrentProcess();
        while (true)
        {
            Console.Out.WriteLine("ready");
            Console.Out.Flush();
            string? work = Console.In.ReadLine();
            if (work is null or "end") return;
            self.Refresh();
            var cpu = self.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            double units = 0;
            while (clock.Elapsed.TotalSeconds < s.Seconds) units += Once(work);
            double seconds = clock.Elapsed.TotalSeconds;
            self.Refresh();
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"done {units} {seconds} {(self.TotalProcessorTime - cpu).TotalSeconds}"));
            Console.Out.Flush();
        }
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
