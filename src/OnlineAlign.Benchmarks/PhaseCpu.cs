using System.Globalization;
using OnlineAlign.Api.V1;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// Where a cluster's CPU goes, phase by phase: every quarter second it reads the run's phase (GetRun) and each process's
/// CPU time (utime + stime in /proc/PID/stat), and adds what each process used since the last reading to the phase seen
/// then. The machine's own busy time (/proc/stat) tells what processes outside the cluster (other work on the machine) used.
/// Only rounds 1 and later are counted (the warm start and round 0 are set-up). Linux only; elsewhere it counts nothing.
/// Each second it also reads every thread of the silos (/proc/PID/task) and sums their CPU by what the thread does, from its
/// name: a run's model thread, the JIT compiling in the background, the garbage collector, the thread pool (grain calls,
/// storage, gRPC), the rest: what a silo spends beside its model thread.
/// </summary>
public sealed class PhaseCpu(IReadOnlyList<(string Name, int Pid)> processes)
{
    /// <summary>Linux's USER_HZ: /proc reports CPU time in hundredths of a second.</summary>
    private const double TicksPerSecond = 100;

    private readonly Dictionary<string, double[]> _cpu = new();    // phase -> CPU seconds per process, then the machine's busy seconds
    private readonly Dictionary<string, double> _wall = new();
    private static readonly string[] Order = ["generate", "judge", "pairs", "train", "evaluate", "committed", "between"];

    public IReadOnlyList<(string Name, int Pid)> Processes => processes;

    private readonly Dictionary<(int Process, int Thread), double> _lastThread = new();
    private readonly Dictionary<(int Process, string Kind), double> _threadCpu = new();
    private int _samples;

    private double[]? _idle;
    private double _idleSeconds;

    /// <summary>The processes' CPU use with no run in progress (membership, metrics, timers), before the run starts.</summary>
    public async Task IdleAsync(TimeSpan span)
    {
        var before = Read();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Task.Delay(span);
        var after = Read();
        _idleSeconds = clock.Elapsed.TotalSeconds;
        _idle = after.Zip(before, (a, b) => a - b).ToArray();
    }

    /// <summary>Samples until <paramref name="done"/> completes.</summary>
    public async Task SampleAsync(Runs.RunsClient client, string runId, Task done)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double lastWall = 0;
        double[]? last = null;
        string? phase = null;
        while (!done.IsCompleted)
        {
            var run = await client.GetRunAsync(new GetRunRequest { RunId = runId });
            var now = Read();
            double wall = clock.Elapsed.TotalSeconds;
            if (last is not null && phase is not null)
            {
                var sums = _cpu.TryGetValue(phase, out var s) ? s : _cpu[phase] = new double[now.Length];
                for (int i = 0; i < now.Length; i++) sums[i] += now[i] - last[i];
                _wall[phase] = _wall.GetValueOrDefault(phase) + wall - lastWall;
            }
            if (_samples++ % 4 == 0) ReadThreads(count: phase is not null);
            (last, lastWall) = (now, wall);
            phase = run.Round >= 1 && run.Status == "running" ? (run.Phase == "" ? "between" : run.Phase) : null;
            await Task.WhenAny(done, Task.Delay(250));
        }
    }

    /// <summary>A table: per phase its wall seconds and each process's CPU seconds (and the share of the machine's 2 cores they add up to).</summary>
    public void Report(TextWriter report, string title)
    {
        int cores = Environment.ProcessorCount;
        report.WriteLine($"{title}: CPU seconds per process while the run was in each phase (rounds >= 1, sampled every 0.25 s); " +
                         $"'other' is the machine's busy time not in these processes; {cores} cores");
        report.WriteLine($"{"phase",-10}{"wall",7}" + string.Join("", processes.Select(p => $"{p.Name,10}")) + $"{"other",8}{"busy/cap",10}");
        if (_idle is not null)
            report.WriteLine($"{"idle",-10}{_idleSeconds,7:F2}" + string.Join("", _idle.Take(processes.Count).Select(v => $"{v,10:F2}"))
                             + $"{Math.Max(0, _idle[^1] - _idle.Take(processes.Count).Sum()),8:F2}{_idle[^1] / (_idleSeconds * cores),10:P0}");
        foreach (var phase in Order.Where(_cpu.ContainsKey).Concat(_cpu.Keys.Where(k => !Order.Contains(k))))
        {
            var sums = _cpu[phase];
            double ours = sums.Take(processes.Count).Sum();
            double wall = _wall[phase];
            report.WriteLine($"{phase,-10}{wall,7:F2}" + string.Join("", sums.Take(processes.Count).Select(v => $"{v,10:F2}"))
                             + $"{Math.Max(0, sums[^1] - ours),8:F2}{(wall > 0 ? sums[^1] / (wall * cores) : 0),10:P0}");
        }
    }

    /// <summary>Per silo, the CPU seconds of its threads by kind over the counted rounds (threads read once a second).</summary>
    public void ReportThreads(TextWriter report, string title)
    {
        report.WriteLine($"{title}: CPU seconds per silo by thread (rounds >= 1, read every second): " +
                         "model (the run's model thread), jit (background recompiles), gc, thread pool, other");
        for (int i = 0; i < processes.Count; i++)
        {
            if (!processes[i].Name.StartsWith("gpu", StringComparison.Ordinal) && processes[i].Name != "control") continue;
            double Kind(string kind) => _threadCpu.GetValueOrDefault((i, kind));
            report.WriteLine($"{processes[i].Name,-10}" + string.Join("", ThreadKinds.Select(k => $"{k} {Kind(k),6:F2}  ")));
        }
    }

    private static readonly string[] ThreadKinds = ["model", "jit", "gc", "thread-pool", "other"];

    /// <summary>What a thread does, from the name .NET gives it (Linux keeps its first 15 characters).</summary>
    private static string ThreadKind(string name) =>
        name.StartsWith("model-", StringComparison.Ordinal) ? "model"
        : name.StartsWith(".NET Tiered Com", StringComparison.Ordinal) ? "jit"
        : name is ".NET Server GC" or ".NET BGC" or ".NET Finalizer" ? "gc"
        : name.StartsWith(".NET TP Worker", StringComparison.Ordinal) ? "thread-pool"
        : "other";

    /// <summary>Adds each thread's CPU since the last reading to its kind (a thread first seen now was born since then).</summary>
    private void ReadThreads(bool count)
    {
        bool first = _lastThread.Count == 0;
        for (int i = 0; i < processes.Count; i++)
        {
            string folder = $"/proc/{processes[i].Pid}/task";
            if (!Directory.Exists(folder)) continue;
            foreach (var task in Directory.EnumerateDirectories(folder))
            {
                if (!int.TryParse(Path.GetFileName(task), CultureInfo.InvariantCulture, out int tid)) continue;
                string stat;
                try { stat = File.ReadAllText(Path.Combine(task, "stat")); }
                catch (IOException) { continue; }      // the thread ended meanwhile
                string name = stat[(stat.IndexOf('(') + 1)..stat.LastIndexOf(')')];
                double seconds = Seconds(stat);
                double before = _lastThread.TryGetValue((i, tid), out var b) ? b : first ? seconds : 0;
                _lastThread[(i, tid)] = seconds;
                if (!count) continue;
                var key = (i, ThreadKind(name));
                _threadCpu[key] = _threadCpu.GetValueOrDefault(key) + seconds - before;
            }
        }
    }

    private double[] Read()
    {
        var values = new double[processes.Count + 1];
        for (int i = 0; i < processes.Count; i++) values[i] = ProcessSeconds(processes[i].Pid);
        values[^1] = MachineBusySeconds();
        return values;
    }

    /// <summary>utime + stime of a process (fields 14 and 15 of /proc/PID/stat, counted after the command name's closing parenthesis).</summary>
    private static double ProcessSeconds(int pid)
    {
        try
        {
            return Seconds(File.ReadAllText($"/proc/{pid}/stat"));
        }
        catch (IOException) { return 0; }
    }

    private static double Seconds(string stat)
    {
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
    }

    /// <summary>The machine's busy CPU time: /proc/stat's first line, all but idle and iowait.</summary>
    private static double MachineBusySeconds()
    {
        try
        {
            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
                .Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            return (fields.Take(8).Sum() - fields[3] - fields[4]) / TicksPerSecond;
        }
        catch (IOException) { return 0; }
    }
}
