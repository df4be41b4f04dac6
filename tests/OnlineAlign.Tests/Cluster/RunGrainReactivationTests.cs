using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OnlineAlign.Tests.Cluster;

/// <summary>
/// A run grain activated again mid-run reads its state back from grain storage as it was written (RunStateJson) and asks
/// its phases with the very spec the run started with: the phase its lost activation had finished answers from its done
/// marker, and the run ends as an uninterrupted one. Before RunStateJson, storage read a LoRA section's target_modules
/// back as the default list and a field set to 0 whose default is not 0 as that default: the reactivated run asked under
/// another done-marker key and trained round 2 again.
/// </summary>
[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class RunGrainReactivationTests(ITestOutputHelper output)
{
    /// <summary>LoRA on three modules (not the default four) and guard.min_judge_tau 0 (its default is 0.5).</summary>
    private static RunSpec Spec()
    {
        var spec = LocalTestCluster.SmallSpec(rounds: 2);
        spec.Optimizer = new OptimizerSpec { CarryState = true, BatchSize = 8, LearningRate = 1e-3 };
        spec.Model = new ModelSpec { Lora = new LoraSpec { R = 8, Alpha = 16, TargetModules = { "q_proj", "v_proj", "down_proj" } } };
        spec.Guard = new GuardSpec { MinJudgeTau = 0 };
        return spec;
    }

    [Fact]
    public async Task ARunGrainActivatedAgainMidRoundReusesTheTrainPhaseItsLostActivationFinished()
    {
        // The GPU silo votes the killed control silo dead itself, before its replacement starts (FastProbes: in seconds).
        await using var cluster = await LocalTestCluster.StartAsync(("control", LocalTestCluster.FastProbes()), ("gpu", LocalTestCluster.FastProbes()));
        await SiloLogTail.OnFailureAsync(cluster, output, () => ReactivatedMidRoundAsync(cluster));
    }

    private static async Task ReactivatedMidRoundAsync(LocalTestCluster cluster)
    {
        const string held = "evaluate/round-2/start";
        cluster.Faults.Hold(held);
        var run = await cluster.Client(0).StartRunAsync(new StartRunRequest { Spec = Spec() });
        await cluster.Faults.WaitUntilReachedAsync(held, TimeSpan.FromMinutes(6));
        // Round 2's checkpoint is durable (its train phase's done marker is written after the manifest) and not yet recorded
        // in the run's state: the round commits it once evaluated.
        for (var deadline = DateTime.UtcNow.AddMinutes(3);
             !(await RunProbe.BlobsAsync(cluster, $"runs/{run.Id}/round-0002/train/")).Any(b => b.Contains("/done-", StringComparison.Ordinal));)
        {
            Assert.True(DateTime.UtcNow < deadline, "round 2's train phase wrote no done marker");
            await Task.Delay(250);
        }
        // The control silo, with the run grain, dies; the evaluation in flight on the GPU silo goes on.
        cluster.Silos[0].Kill();
        cluster.Faults.Release(held);
        await cluster.ReplaceKilledSiloAsync(0, "control", LocalTestCluster.FastProbes(), TimeSpan.FromMinutes(5));
        var client = cluster.Client(2);
        // Not waited for on the new silo's wake-up line: while the killed silo is not yet declared dead that call can time
        // out, and then the run's reminder activates it without the line. The train phase asked again (below) is the proof
        // that the run grain was activated again: a live activation goes on to its evaluation without asking.
        await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(8));

        // The run grain, activated again from storage, asked round 2's train phase again with the spec it was started with:
        // the same key, so the marker answered and round 2 was trained once.
        var gpu = cluster.Silos[1];
        await gpu.WaitForOutputAsync($"run {run.Id} round 2 train: already done", TimeSpan.FromMinutes(1));
        Assert.Equal(1, Occurrences(gpu.Output, $"run {run.Id} round 2 trained and checkpointed"));
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 2);

        await RunProbe.AssertSameRoundsAsync(cluster, (await RunProbe.CompletedRunAsync(client, Spec(), TimeSpan.FromMinutes(6))).Rounds, rounds);
    }

    private static int Occurrences(string text, string line)
    {
        int count = 0;
        for (int at = text.IndexOf(line, StringComparison.Ordinal); at >= 0; at = text.IndexOf(line, at + line.Length, StringComparison.Ordinal)) count++;
        return count;
    }
}
