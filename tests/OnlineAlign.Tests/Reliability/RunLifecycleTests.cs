using System.Globalization;
using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Reliability;

/// <summary>The run state machine through the real API: failures, bounded retries, concurrent transitions, reminders.</summary>
[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class RunLifecycleTests(SharedCluster shared) : IClassFixture<SharedCluster>
{
    [Fact]
    public async Task ARepeatedFailureFailsTheRunWithItsPhaseAndResumeRetriesItWhileTransientOnesAreRiddenOut()
    {
        var cluster = shared.Cluster;
        var client = cluster.Client();

        // The judge phase throws the same error on every attempt (as a judge that cannot parse would).
        const string judge = "judge/round-1/start";
        cluster.Faults.Fail(judge, "deterministic", 3);
        var run = await client.StartRunAsync(new StartRunRequest { Spec = LocalTestCluster.SmallSpec(rounds: 1) });
        Assert.Equal(1, await RunProbe.ReminderRowsAsync(cluster, run.Id)); // a running run has its reminder
        using var watch = client.WatchRun(new WatchRunRequest { RunId = run.Id });
        var failed = await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "failed", TimeSpan.FromMinutes(4));
        Assert.Equal(3, cluster.Faults.Hits(judge)); // three attempts (the spec's default), not one more
        Assert.Equal((1, "judge"), (failed.Round, failed.Phase));
        Assert.Contains("round 1 judge failed 3 times with the same inputs", failed.Error);
        Assert.Contains("injected fault at judge/round-1/start", failed.Error);
        await RunProbe.WaitForReminderRowsAsync(cluster, run.Id, 0, TimeSpan.FromMinutes(2)); // gone at the latest at its next tick
        // The live stream says so too, and ends.
        Run? last = null;
        while (await watch.ResponseStream.MoveNext(CancellationToken.None))
            if (watch.ResponseStream.Current.Run is { } r) last = r;
        Assert.Equal("failed", last?.Status);
        Assert.Contains("failed 3 times", last!.Error);

        // Resume retries the failed phase (the fault is spent now) and the run completes.
        var resumed = await client.ResumeRunAsync(new RunRef { RunId = run.Id });
        Assert.Equal("running", resumed.Status);
        Assert.Equal("", resumed.Error);
        var done = await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(4));
        Assert.Equal(1, done.CommittedRounds);
        await RunProbe.WaitForReminderRowsAsync(cluster, run.Id, 0, TimeSpan.FromMinutes(2)); // gone at the latest at its next tick

        // A transient failure (a timeout) twice: retried with backoff, never counted as a failed attempt.
        const string pairs = "pairs/round-1/start";
        cluster.Faults.Fail(pairs, "transient", 2);
        var second = await client.StartRunAsync(new StartRunRequest { Spec = LocalTestCluster.SmallSpec(rounds: 1) });
        await RunProbe.WaitForAsync(client, second.Id, r => r.Status == "completed", TimeSpan.FromMinutes(4));
        Assert.Equal(2, cluster.Faults.Hits(pairs));
        Assert.Contains($"run {second.Id} round 1 pairs attempt failed (transient failure 2", cluster.Silos[0].Output);
        Assert.DoesNotContain($"run {second.Id} round 1 pairs attempt failed (deterministic", cluster.Silos[0].Output);
    }

    [Fact]
    public async Task ConcurrentPauseResumeCancelCallsAreEachOkOrFailedPreconditionAndTheLastOkOneIsWhatPersists()
    {
        await using var cluster = await LocalTestCluster.StartAsync(("all", null));
        var client = cluster.Client();
        const string generate = "generate/round-1/start";
        cluster.Faults.Hold(generate);
        var run = await client.StartRunAsync(new StartRunRequest { Spec = LocalTestCluster.SmallSpec(rounds: 1) });
        await cluster.Faults.WaitUntilReachedAsync(generate, TimeSpan.FromMinutes(4));

        var random = new Random(14);
        var calls = Enumerable.Range(0, 200).Select(_ => random.Next(4)).Select(async Task<(string Kind, StatusCode Code, Run? Run)> (kind) =>
        {
            var target = new RunRef { RunId = run.Id };
            try
            {
                return kind switch
                {
                    0 => ("pause", StatusCode.OK, await client.PauseRunAsync(target)),
                    1 => ("resume", StatusCode.OK, await client.ResumeRunAsync(target)),
                    2 => ("cancel", StatusCode.OK, await client.CancelRunAsync(target)),
                    _ => ("get", StatusCode.OK, await client.GetRunAsync(new GetRunRequest { RunId = run.Id })),
                };
            }
            catch (RpcException e) { return (kind.ToString(CultureInfo.InvariantCulture), e.StatusCode, null); }
        }).ToList();
        var answers = await Task.WhenAll(calls);

        Assert.All(answers, a => Assert.True(a.Code is StatusCode.OK or StatusCode.FailedPrecondition, $"{a.Kind}: {a.Code}"));
        var transitions = answers.Where(a => a.Code == StatusCode.OK && a.Kind != "get").Select(a => a.Run!).ToList();
        Assert.NotEmpty(transitions);
        // Each OK transition wrote the state once: versions are distinct, and the latest is what the run is in.
        Assert.Equal(transitions.Count, transitions.Select(t => t.StateVersion).Distinct().Count());
        var latest = transitions.MaxBy(t => t.StateVersion)!;
        var now = await client.GetRunAsync(new GetRunRequest { RunId = run.Id });
        Assert.Equal(latest.Status, now.Status);
        Assert.Equal(latest.StateVersion, now.StateVersion);

        // What persisted is that state: a new silo reads it from storage.
        cluster.Faults.Release(generate);
        await cluster.Silos[0].StopAsync(TimeSpan.FromSeconds(30));
        await cluster.AddSiloAsync("all");
        client = cluster.Client(1);
        var reread = await client.GetRunAsync(new GetRunRequest { RunId = run.Id });
        Assert.Equal(latest.Status, reread.Status);
        if (latest.Status == "running")
        {
            await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(4));
        }
        else
        {
            // Stopped as told: no reminder that could restart it, and it is still stopped after the new silo started.
            await RunProbe.WaitForReminderRowsAsync(cluster, run.Id, 0, TimeSpan.FromMinutes(2)); // gone at the latest at its next tick
            Assert.Equal(latest.Status, (await client.GetRunAsync(new GetRunRequest { RunId = run.Id })).Status);
            Assert.Empty((await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds);
        }
    }

    [Fact]
    public async Task PausingStopsThePhaseInFlightAndAPausedRunHasNoReminderAndAStartRetriedWithItsRequestIdIsTheSameRun()
    {
        var cluster = shared.Cluster;
        var client = cluster.Client();
        int runsBefore = (await client.ListRunsAsync(new ListRunsRequest())).TotalRuns;
        const string training = "train/round-1/step";
        cluster.Faults.Hold(training);
        var request = new StartRunRequest { Spec = LocalTestCluster.SmallSpec(rounds: 1), RequestId = "client-retry-1" };
        // Its reminder's first two writes lose a race on the reminder table (Orleans' ReminderException): the third is written,
        // and the start succeeds (before, the exception reached the API unmapped: UNKNOWN).
        int hits = cluster.Faults.Hits("run/reminder");
        cluster.Faults.Fail("run/reminder", "reminderrace", 2);
        var run = await client.StartRunAsync(request);
        Assert.Equal(hits + 2, cluster.Faults.Hits("run/reminder"));
        await RunProbe.WaitForReminderRowsAsync(cluster, run.Id, 1, TimeSpan.FromMinutes(2));

        // The same request again (a client that did not see the answer) is the same run, not a second one.
        var retried = await client.StartRunAsync(request);
        Assert.Equal(run.Id, retried.Id);
        var reused = request.Clone();
        reused.Spec.Seed = 99;
        var conflict = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(reused).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, conflict.StatusCode);
        Assert.Equal(runsBefore + 1, (await client.ListRunsAsync(new ListRunsRequest())).TotalRuns);

        // Pause while training is inside its step loop: the phase stops (the worker says so) and is not recorded.
        await cluster.Faults.WaitUntilReachedAsync(training, TimeSpan.FromMinutes(4));
        var paused = await client.PauseRunAsync(new RunRef { RunId = run.Id });
        Assert.Equal("paused", paused.Status);
        await cluster.Silos[0].WaitForOutputAsync($"run {run.Id} round 1 train cancelled", TimeSpan.FromMinutes(1));
        await RunProbe.WaitForReminderRowsAsync(cluster, run.Id, 0, TimeSpan.FromMinutes(2)); // gone at the latest at its next tick
        cluster.Faults.Release(training);
        Assert.Empty(await RunProbe.BlobsAsync(cluster, $"runs/{run.Id}/round-0001/train/done-"));

        // Resumed, it drives again and has its reminder, even when writing the reminder failed at the resume: the run
        // writes it again (a resumed run without one would stay stopped after its silo died). Held in training meanwhile,
        // so the run cannot complete (and drop its reminder) before the table is read.
        cluster.Faults.Hold(training);
        cluster.Faults.Fail("run/reminder", "transient", 1);
        var resumed = await client.ResumeRunAsync(new RunRef { RunId = run.Id });
        Assert.Equal("running", resumed.Status);
        Assert.Equal(hits + 3, cluster.Faults.Hits("run/reminder"));
        await RunProbe.WaitForReminderRowsAsync(cluster, run.Id, 1, TimeSpan.FromMinutes(2));
        cluster.Faults.Release(training);
        await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(4));
        await RunProbe.WaitForReminderRowsAsync(cluster, run.Id, 0, TimeSpan.FromMinutes(2)); // a completed run keeps none
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 1);

        // Ids nobody started are unknown to every call, answered from the run registry.
        foreach (var call in new Func<Task>[]
        {
            () => client.GetRunAsync(new GetRunRequest { RunId = "nope" }).ResponseAsync,
            () => client.PauseRunAsync(new RunRef { RunId = "nope" }).ResponseAsync,
            () => client.ResumeRunAsync(new RunRef { RunId = "nope" }).ResponseAsync,
            () => client.CancelRunAsync(new RunRef { RunId = new string('x', 10_000) }).ResponseAsync,
            () => client.ListRoundsAsync(new ListRoundsRequest { RunId = "nope" }).ResponseAsync,
        })
            Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(call)).StatusCode);
    }

    [Fact]
    public async Task ASpecCheckThatDoesNotAnswerIsAskedOfAnotherOnceAndAStatusAnswersWithoutItsMemoryPlan()
    {
        var cluster = shared.Cluster;
        var client = cluster.Client();
        const string problems = OnlineAlign.Grains.Workers.SpecCheckGrain.ProblemsPoint, plan = OnlineAlign.Grains.Workers.SpecCheckGrain.PlanPoint;

        // The first check fails as a call out of reach would (a timeout): the start asks another check, and the run starts.
        int hits = cluster.Faults.Hits(problems);
        cluster.Faults.Fail(problems, "transient", 1);
        var run = await client.StartRunAsync(new StartRunRequest { Spec = LocalTestCluster.SmallSpec(rounds: 1) });
        Assert.Equal(hits + 1, cluster.Faults.Hits(problems));
        Assert.Contains("a spec check did not answer (TimeoutException", cluster.Silos[0].Output);

        // A status whose memory plan could not be made now answers without it, and with it when asked again.
        cluster.Faults.Fail(plan, "transient", 1);
        Assert.Equal("", (await client.GetRunAsync(new GetRunRequest { RunId = run.Id })).MemoryPlan);
        Assert.NotEqual("", (await client.GetRunAsync(new GetRunRequest { RunId = run.Id })).MemoryPlan);
        Assert.Equal("cancelled", (await client.CancelRunAsync(new RunRef { RunId = run.Id })).Status);

        // Two checks that fail: the start answers "unavailable, try again" at once and starts nothing (its id stays unknown).
        cluster.Faults.Fail(problems, "transient", 2);
        var request = new StartRunRequest { Spec = LocalTestCluster.SmallSpec(rounds: 1), RequestId = "spec-check-out-of-reach" };
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.StartRunAsync(request).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        Assert.Contains("injected transient fault at spec-check/problems", refused.Status.Detail);
        Assert.Equal(hits + 3, cluster.Faults.Hits(problems));
        // The same request later (the fault spent) starts the run: nothing of the refused start was left behind.
        var started = await client.StartRunAsync(request);
        Assert.Equal("running", started.Status);
        await client.CancelRunAsync(new RunRef { RunId = started.Id });
    }
}
