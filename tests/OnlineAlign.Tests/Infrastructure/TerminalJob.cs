using System.Globalization;
using System.Diagnostics;

namespace OnlineAlign.Tests.Infrastructure;

/// <summary>
/// The CLI as a job in a terminal: its own process group (setsid), which the processes it starts (silo,
/// Azurite) join, and Ctrl-C as SIGINT to that whole group, as a terminal sends it.
/// </summary>
public sealed class TerminalJob : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stdout, _stderr;
    private readonly System.Text.StringBuilder _live = new();
    /// <summary>setsid makes the CLI (env and setsid exec in place) the leader of a new group whose id is its pid.</summary>
    public int Group => _process.Id;

    private TerminalJob(Process process)
    {
        _process = process;
        _stdout = Task.Run(async () =>
        {
            string? line;
            var all = new System.Text.StringBuilder();
            while ((line = await process.StandardOutput.ReadLineAsync()) is not null)
            {
                all.AppendLine(line);
                lock (_live) _live.AppendLine(line);
            }
            return all.ToString();
        });
        _stderr = process.StandardError.ReadToEndAsync();
    }

    public static TerminalJob Start(IReadOnlyDictionary<string, string>? environment, params string[] cliArgs)
    {
        // A shell's foreground job takes SIGINT's default action whatever the shell inherited; a test runner started
        // in the background of a script (`nohup ... &`) passes SIGINT on ignored, and Ctrl-C would then reach no
        // process of the job. env resets it, then execs setsid, which execs the CLI: the job's pid stays the CLI's.
        var info = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--default-signal=INT", "setsid", "dotnet", RepositoryPaths.CliDll }.Concat(cliArgs)) info.ArgumentList.Add(a);
        info.Environment["Silo__TorchThreads"] = "1";   // the silos a `local` or `up` starts: as SiloProcess's
        info.Environment["Silo__PretrainedCacheFolder"] = RepositoryPaths.PretrainedCache;
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        return new TerminalJob(Process.Start(info)!);
    }

    /// <summary>What the job has printed so far.</summary>
    public string OutputSoFar { get { lock (_live) return _live.ToString(); } }

    /// <summary>Waits until the job prints a line matching the pattern (the timeout only bounds a test that went wrong).</summary>
    public async Task<System.Text.RegularExpressions.Match> WaitForOutputAsync(string pattern, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var match = System.Text.RegularExpressions.Regex.Match(OutputSoFar, pattern);
            if (match.Success) return match;
            if (_process.HasExited && _stdout.IsCompleted) throw new InvalidOperationException($"the job exited without printing /{pattern}/: {OutputSoFar}{await _stderr}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"no /{pattern}/ within {timeout}: {OutputSoFar}");
            await Task.Delay(100);
        }
    }

    /// <summary>Ctrl-C: SIGINT to the job's process group; returns how long until no process of the group was left (at most <paramref name="limit"/>).</summary>
    public async Task<TimeSpan> InterruptAsync(TimeSpan limit)
    {
        // Never signal a group this job does not lead (it would be the test runner's own).
        if (ProcessGroupOf(_process.Id) != Group) throw new InvalidOperationException($"pid {_process.Id} does not lead its own process group");
        var watch = Stopwatch.StartNew();
        Process.Start("kill", ["-INT", "--", $"-{Group}"])!.WaitForExit();
        while (Members(Group).Count > 0 && watch.Elapsed < limit) await Task.Delay(100);
        return watch.Elapsed;
    }

    public List<int> Members() => Members(Group);

    /// <summary>Every process of the job's group, once setsid has made the group (it has when the job printed anything or a silo reached a fault point).</summary>

    public async Task<(int ExitCode, string Stdout, string Stderr)> ExitAsync()
    {
        await _process.WaitForExitAsync();
        return (_process.ExitCode, await _stdout, await _stderr);
    }

    /// <summary>Whatever the test did, nothing of the job outlives it: SIGKILL to the whole group it leads.</summary>
    public void Dispose()
    {
        bool leads;
        try { leads = ProcessGroupOf(_process.Id) == Group; }
        catch (IOException) { leads = false; }               // the CLI itself is gone
        if (leads) Process.Start("kill", ["-KILL", "--", $"-{Group}"])!.WaitForExit();
        else if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        foreach (int pid in Members(Group)) try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
        _process.Dispose();
    }

    /// <summary>A process's group id (field 5 of /proc/PID/stat, after the parenthesised name).</summary>
    public static int ProcessGroupOf(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[2], CultureInfo.InvariantCulture);
    }

    public static List<int> Members(int group)
    {
        var members = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try { if (ProcessGroupOf(pid) == group) members.Add(pid); }
            catch (IOException) { }           // the process ended while we looked
            catch (UnauthorizedAccessException) { }
        }
        return members;
    }
}
