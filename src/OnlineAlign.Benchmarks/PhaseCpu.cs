using System.Globalization;
using OnlineAlign.Api.V1;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// Where a cluster's CPU goes, phase by phase: every quarter second it reads the run's phase (GetRun) and each process's
/// CPU time (utime + stime in /proc/PID/stat), and adds what each process used since the last reading to the phase seen
/// then. The machine's own busy time (/proc/stat) tells what processes outside the cluster (other work on the machine) used.
/// Only rounds 1 and later are counted (the warm start and round 0 are set-up). Linux only; elsewhere it counts nothing.
/// </summary>
public sealed class PhaseCpu(IReadOnlyList<(string Name, int Pid)> processes)
{
    /// <summary>Linux's USER_HZ: /proc reports CPU time in hundredths of a second.</summary>
    private const double TicksPerSecond = 100;

    private readonly Dictionary<string, double[]> _cpu = new();    // phase -> CPU seconds per process, then the machine's busy seconds
    private readonly Dictionary<string, double> _wall = new();
    private static readonly string[] Order = ["generate", "judge", "pairs", "train", "evaluate", "committed", "between"];

    public IReadOnlyList<(string Name, int Pid)> Processes => processes;

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
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
        }
        catch (IOException) { return 0; }
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
