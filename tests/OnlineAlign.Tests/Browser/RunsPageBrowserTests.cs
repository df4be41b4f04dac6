using System.Diagnostics;
using System.Text.Json.Nodes;
using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Browser;

/// <summary>
/// The silo's runs page in a real browser (Debian's Chromium, driven by puppeteer-core from runs_page.cjs) against a real
/// silo during a run: the page asks for the key, lists the run, shows its rounds, pauses it with its button, and shows a
/// round committed after it loaded without a reload, then forks the run from a round and cancels the fork. Screenshots go to artifacts/runs-page/ (docs/watching.md shows them).
/// </summary>
[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class RunsPageBrowserTests
{
    private const string Key = "7c1e9a4f2d8b5e0a3c6f9b2d5e8a1c4f7b0d3e6a";

    [Fact]
    public async Task ThePageListsTheRunPausesItShowsARoundCommittedAfterItLoadedAndForks()
    {
        string chromium = Chromium.Path();
        string shots = Path.Combine(RepositoryPaths.Root, "artifacts", "runs-page");
        Directory.CreateDirectory(shots);
        await using var cluster = await LocalTestCluster.StartKeyedAsync(Key, offLoopback: false);
        var client = cluster.Client(apiKey: Key);
        // Held inside round 2's training (round 1 committed): the page loads with rounds 0 and 1, and round 2 can only
        // commit after the test lets it.
        const string training = "train/round-2/step";
        cluster.Faults.Hold(training);
        var run = await client.StartRunAsync(new StartRunRequest { Spec = LocalTestCluster.SmallSpec(rounds: 2) });
        await cluster.Faults.WaitUntilReachedAsync(training, TimeSpan.FromMinutes(6));

        var start = new ProcessStartInfo("node", Path.Combine("tests", "OnlineAlign.Tests", "Browser", "runs_page.cjs"))
        {
            WorkingDirectory = RepositoryPaths.Root, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            Environment =
            {
                ["PAGE_URL"] = $"http://127.0.0.1:{cluster.Silos[0].MetricsPort}/ui/", ["API_KEY"] = Key, ["RUN_ID"] = run.Id,
                ["SHOTS"] = shots, ["CHROMIUM"] = chromium,
            },
        };
        using var node = Process.Start(start)!;
        var stderr = node.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        try
        {
            // The page's Pause button paused the run: the API says so, and its training phase was stopped.
            Assert.Equal("paused", await NextLine(node, deadline.Token, stderr));
            Assert.Equal("paused", (await client.GetRunAsync(new GetRunRequest { RunId = run.Id })).Status);
            await cluster.Silos[0].WaitForOutputAsync($"run {run.Id} round 2 train cancelled", TimeSpan.FromMinutes(1));
            cluster.Faults.Release(training);
            await node.StandardInput.WriteLineAsync("go");
            await node.StandardInput.FlushAsync();

            string last = await NextLine(node, deadline.Token, stderr);
            await node.WaitForExitAsync(deadline.Token);
            Assert.True(node.ExitCode == 0, $"node failed ({node.ExitCode}): {await stderr}");
            Assert.StartsWith("result ", last, StringComparison.Ordinal);
            var result = JsonNode.Parse(last["result ".Length..])!.AsObject();

            Assert.True(result["askedForKey"]!.GetValue<bool>());
            Assert.Equal("running", result["listedState"]!.GetValue<string>());
            Assert.Equal([0, 1], result["roundsBefore"]!.AsArray().Select(r => r!.GetValue<int>()));
            // Round 2 arrived through the live updates: same document, no navigation.
            Assert.Equal("yes", result["sameDocument"]!.GetValue<string>());
            Assert.Equal(0, result["navigations"]!.GetValue<int>());
            Assert.Equal([0, 1, 2], result["roundsAfter"]!.AsArray().Select(r => r!.GetValue<int>()));
            Assert.Equal("completed", result["status"]!.GetValue<string>());
            var charts = result["charts"]!.AsArray().ToDictionary(c => c!["title"]!.GetValue<string>(), c => c!["drawn"]!.GetValue<bool>());
            Assert.True(charts["Accuracy"] && charts["Rewards and margins"] && charts["KL to the initial policy"] && charts["Training loss per step"],
                string.Join(", ", result["charts"]!.AsArray().Select(c => $"{c!["title"]}: {c["drawn"]} ({c["text"]})"))
                + $"; the page's errors: [{string.Join("; ", result["errors"]!.AsArray().Select(e => e!.GetValue<string>()))}]");
            Assert.Contains("eval/accuracy", result["columns"]!.AsArray().Select(c => c!.GetValue<string>()));
            Assert.Empty(result["errors"]!.AsArray());
            Assert.True(new FileInfo(Path.Combine(shots, "runs.png")).Length > 0 && new FileInfo(Path.Combine(shots, "run.png")).Length > 0);

            var done = await client.GetRunAsync(new GetRunRequest { RunId = run.Id });
            Assert.Equal(2, done.CommittedRounds);
            // The Fork form started a run from round 1 with the override; its Cancel button cancelled that run.
            var fork = await client.GetRunAsync(new GetRunRequest { RunId = result["forked"]!.GetValue<string>() });
            Assert.Equal((run.Id, 1), (fork.ForkedFrom.RunId, fork.ForkedFrom.Round));
            Assert.Equal(0.2, fork.Spec.Loss.Beta, 12);
            Assert.Equal("cancelled", fork.Status);
            Assert.Equal("cancelled", result["forkStatus"]!.GetValue<string>());
        }
        finally
        {
            if (!node.HasExited) node.Kill(entireProcessTree: true);
        }
    }

    /// <summary>The script's next line on standard output; its error output if it ended first.</summary>
    private static async Task<string> NextLine(Process node, CancellationToken ct, Task<string> stderr) =>
        await node.StandardOutput.ReadLineAsync(ct) is { } line ? line
            : throw new InvalidOperationException($"the browser script ended early ({(node.HasExited ? node.ExitCode : "running")}): {await stderr}");
}

/// <summary>Debian's Chromium (the README's test command installs it), or the one CHROMIUM_PATH names.</summary>
public static class Chromium
{
    public static string Path()
    {
        var candidates = new[] { Environment.GetEnvironmentVariable("CHROMIUM_PATH") }
            .Concat((Environment.GetEnvironmentVariable("PATH") ?? "").Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
                .SelectMany(folder => new[] { System.IO.Path.Combine(folder, "chromium"), System.IO.Path.Combine(folder, "chromium-browser") }));
        return candidates.FirstOrDefault(c => !string.IsNullOrEmpty(c) && File.Exists(c))
            ?? throw new InvalidOperationException("Chromium was not found (chromium on PATH, or CHROMIUM_PATH): the browser tests need it. On Debian or " +
                "Ubuntu: `sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium` (the README's test command does this)");
    }
}
