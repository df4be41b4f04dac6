using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.EndToEnd;

/// <summary>The local cluster as a user lives it in a terminal: Ctrl-C mid-run, then the same command again.</summary>
[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
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

        string runId;
        using (var local = TerminalJob.Start(new Dictionary<string, string> { ["Silo__FaultFolder"] = faults.Folder }, "local", "--data", data, "--spec", spec))
        {
            await faults.WaitUntilReachedAsync(point, TimeSpan.FromMinutes(4));
            Assert.Equal(local.Group, TerminalJob.ProcessGroupOf(faults.ReachedBy(point)));
            Assert.True(local.Members().Count >= 3, "the CLI, the silo and Azurite share the terminal's process group");
            var stopped = await local.InterruptAsync(TimeSpan.FromSeconds(90));
            Assert.True(local.Members().Count == 0, $"still running {stopped.TotalSeconds:F1} s after SIGINT: pids {string.Join(", ", local.Members())}");
            var (code, stdout, stderr) = await local.ExitAsync();
            Assert.True(code == 130, $"exit code {code}: {stdout}{stderr}");
            Assert.Contains("Interrupted", stdout);
            runId = stdout.Split('\n').First(l => l.StartsWith("Started run ", StringComparison.Ordinal)).Split(' ')[2].TrimEnd(':');
        }

        faults.Release(point);
        var (exit, again, errors) = await CliProcess.RunAsync(TimeSpan.FromMinutes(5), "local", "--data", data, "--spec", spec);
        Assert.True(exit == 0, errors + again);
        Assert.DoesNotContain("The silo exited with code", again + errors);   // it stopped cleanly
        // The silo wakes the run as it comes up, so round 2 may finish before the CLI asks: either message is right.
        Assert.Matches($@"Resuming interrupted run {runId}: (1 of 2 rounds committed, continuing at round 2|it finished its 2 rounds as the cluster came up)", again);
        Assert.DoesNotContain("Started run", again);
        Assert.Contains($"run {runId}: completed, round 2, 2/2 rounds committed", again);
        Assert.Matches(@"│ 2\s+│", again);                  // the table: rounds 0, 1 and 2, each once
        Assert.DoesNotMatch(@"│ 3\s+│", again);
        Assert.False(File.Exists(Path.Combine(data, "local-run.txt")), "a run seen to its end is not resumed again");

        // The same spec run again without interruption (--fresh) ends with the same rounds and the same weights: round 2,
        // interrupted and done again in a new process, is bit-identical to the uninterrupted one.
        var (freshExit, fresh, freshErrors) = await CliProcess.RunAsync(TimeSpan.FromMinutes(5), "local", "--data", data, "--spec", spec, "--fresh");
        Assert.True(freshExit == 0, freshErrors + fresh);
        string freshId = fresh.Split('\n').First(l => l.StartsWith("Started run ", StringComparison.Ordinal)).Split(' ')[2].TrimEnd(':');
        Assert.NotEqual(runId, freshId);
        string freshWeights = Path.Combine(data, "runs", freshId, "policy", "model.safetensors");
        string resumedWeights = Path.Combine(data, "runs", runId, "policy", "model.safetensors");
        string[] resumedRows = RoundRows(again).Split('\n'), freshRows = RoundRows(fresh).Split('\n');
        Assert.Equal(4, resumedRows.Length);                              // the header and rounds 0, 1, 2
        Assert.Equal(freshRows[..3], resumedRows[..3]);                   // rounds 0 and 1, committed before the interrupt
        var differing = DifferingTensors(freshWeights, resumedWeights).ToList();
        Assert.True(differing.Count == 0 && freshRows[3] == resumedRows[3],
            $"round 2 resumed differs from round 2 uninterrupted:\n{resumedRows[3]}\n{freshRows[3]}\ntensors that differ: {string.Join(", ", differing)}");
    }

    private static string RoundRows(string output) => string.Join("\n", output.Split('\n').Where(line => line.StartsWith("│ ", StringComparison.Ordinal)));

    private static IEnumerable<string> DifferingTensors(string a, string b)
    {
        var (left, right) = (OnlineAlign.Modeling.Checkpoints.SafeTensors.Read(a), OnlineAlign.Modeling.Checkpoints.SafeTensors.Read(b));
        foreach (var (name, tensor) in left)
        {
            long differing = right.TryGetValue(name, out var other) ? TorchSharp.torch.ne(tensor, other).sum().item<long>() : tensor.NumberOfElements;
            if (differing > 0) yield return $"{name} ({differing} of {tensor.NumberOfElements} values)";
        }
    }

    /// <summary>
    /// `up` keeps the cluster in the foreground for other terminals; stopped mid-run and brought up again, the
    /// run it was driving continues as soon as the silo is up (the silo wakes it; it does not wait for a reminder).
    /// </summary>
    [Fact]
    public async Task UpServesOtherTerminalsAndARunInProgressContinuesWhenItComesUpAgain()
    {
        string data = RepositoryPaths.NewTempFolder("local-up");
        var faults = new FaultControl(Directory.CreateDirectory(Path.Combine(data, "faults")).FullName);
        string spec = Path.Combine(data, "spec.json");
        await File.WriteAllTextAsync(spec, Google.Protobuf.JsonFormatter.Default.Format(LocalTestCluster.SmallSpec(rounds: 1)));
        const string point = "generate/round-1/start";
        faults.Hold(point);
        var environment = new Dictionary<string, string> { ["Silo__FaultFolder"] = faults.Folder };

        string runId;
        using (var up = TerminalJob.Start(environment, "up", "--data", data, "--port", "0"))
        {
            string api = (await up.WaitForOutputAsync(@"gRPC API at (http://127\.0\.0\.1:\d+)", TimeSpan.FromMinutes(2))).Groups[1].Value;
            // The cluster's healthy line names the API before `up` has listed the runs and printed its help: wait for those.
            await up.WaitForOutputAsync(System.Text.RegularExpressions.Regex.Escape($"onlinealign start --api {api}"), TimeSpan.FromMinutes(1));
            var (code, stdout, stderr) = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "start", "--api", api, "--spec", spec);
            Assert.True(code == 0, stderr + stdout);
            runId = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Trim();
            await faults.WaitUntilReachedAsync(point, TimeSpan.FromMinutes(4));
            await up.InterruptAsync(TimeSpan.FromSeconds(90));
            Assert.Empty(up.Members());
            Assert.Equal(0, (await up.ExitAsync()).ExitCode);
        }

        // Held again further on, so that the run is still in progress when the new cluster reports it.
        faults.Release(point);
        const string later = "train/round-1/start";
        faults.Hold(later);
        using (var up = TerminalJob.Start(environment, "up", "--data", data, "--port", "0"))
        {
            string api = (await up.WaitForOutputAsync(@"gRPC API at (http://127\.0\.0\.1:\d+)", TimeSpan.FromMinutes(2))).Groups[1].Value;
            await up.WaitForOutputAsync(System.Text.RegularExpressions.Regex.Escape($"Run {runId} continues: 0 of 1 rounds committed"), TimeSpan.FromMinutes(1));
            await faults.WaitUntilReachedAsync(later, TimeSpan.FromMinutes(5)); // a fresh silo loads its models first
            faults.Release(later);
            var (code, stdout, stderr) = await CliProcess.RunAsync(TimeSpan.FromMinutes(4), "watch", "--api", api, runId);
            Assert.True(code == 0, stderr + stdout);
            Assert.Contains("completed", stdout);
            // Woken by the silo as it came up, not by its reminder a minute later.
            string siloLog = await File.ReadAllTextAsync(Path.Combine(data, "silo.log"));
            // (The round it names is the run's state when it was asked: 0 or 1, depending on whether the woken run had
            // already entered round 1 by then; what matters here is that the silo woke it.)
            Assert.True(siloLog.Contains($"Run {runId} continues at round ", StringComparison.Ordinal),
                "the silo did not wake the run as it came up; its log's lines about runs:\n" + string.Join('\n',
                    siloLog.Split('\n').Where(l => l.Contains("Run", StringComparison.Ordinal) || l.Contains("run ", StringComparison.Ordinal)
                                                     || l.Contains("fail", StringComparison.Ordinal)).TakeLast(60)));
            await up.InterruptAsync(TimeSpan.FromSeconds(90));
            Assert.Empty(up.Members());
        }
    }
}
