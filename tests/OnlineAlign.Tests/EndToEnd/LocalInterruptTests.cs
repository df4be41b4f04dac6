using System.Diagnostics;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.EndToEnd;

/// <summary>The main job as a user lives it in a terminal: Ctrl-C mid-run, then the same command again.</summary>
[Collection("processes")]
public class LocalInterruptTests
{
    [Fact]
    public async Task CtrlCStopsTheWholeLocalClusterWithinTenSecondsAndTheSameCommandResumesTheRun()
    {
        string data = RepositoryPaths.NewTempFolder("local-interrupt");
        var faults = new FaultControl(Directory.CreateDirectory(Path.Combine(data, "faults")).FullName);
        string spec = Path.Combine(data, "spec.json");
        await File.WriteAllTextAsync(spec, Google.Protobuf.JsonFormatter.Default.Format(LocalTestCluster.SmallSpec(rounds: 2)));
        const string point = "train/round-2/start";   // round 1 is committed, round 2 is under way
        faults.Hold(point);

        // setsid: the CLI leads its own process group, as a job in a terminal does; Ctrl-C is SIGINT to the group.
        var info = new ProcessStartInfo("setsid") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "dotnet", RepositoryPaths.CliDll, "local", "--data", data, "--spec", spec }) info.ArgumentList.Add(a);
        info.Environment["Silo__FaultFolder"] = faults.Folder;
        using var cli = Process.Start(info)!;
        var stdout = cli.StandardOutput.ReadToEndAsync();
        var stderr = cli.StandardError.ReadToEndAsync();
        int group = ProcessGroupOf(cli.Id);
        try
        {
            await faults.WaitUntilReachedAsync(point, TimeSpan.FromMinutes(4));
            int silo = faults.ReachedBy(point);
            Assert.Equal(group, ProcessGroupOf(silo));
            Assert.True(Members(group).Count >= 3, "the CLI, the silo and Azurite share the terminal's process group");

            var interrupted = Stopwatch.StartNew();
            Process.Start("kill", ["-INT", "--", $"-{group}"])!.WaitForExit();
            while (Members(group).Count > 0 && interrupted.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(100);
            Assert.True(Members(group).Count == 0,
                $"still running {interrupted.Elapsed.TotalSeconds:F1} s after SIGINT: pids {string.Join(", ", Members(group))}");
        }
        finally
        {
            foreach (int pid in Members(group)) try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { }
        }
        await cli.WaitForExitAsync();
        string first = await stdout;
        Assert.True(cli.ExitCode == 130, $"exit code {cli.ExitCode}: {first}{await stderr}");
        Assert.Contains("Interrupted", first);
        string runId = first.Split('\n').First(l => l.StartsWith("Started run ", StringComparison.Ordinal)).Split(' ')[2].TrimEnd(':');

        faults.Release(point);
        var (code, again, errors) = await CliProcess.RunAsync(TimeSpan.FromMinutes(5), "local", "--data", data, "--spec", spec);
        Assert.True(code == 0, errors + again);
        Assert.Contains($"Resuming interrupted run {runId}: 1 of 2 rounds committed, continuing at round 2", again);
        Assert.DoesNotContain("Started run", again);
        Assert.Contains($"run {runId}: completed, round 2, 2/2 rounds committed", again);
    }

    /// <summary>A process's group id (field 5 of /proc/PID/stat, after the parenthesised name).</summary>
    private static int ProcessGroupOf(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[2]);
    }

    private static List<int> Members(int group)
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
