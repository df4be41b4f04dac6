namespace OnlineAlign.Contracts;

/// <summary>Where a run is in its life. Every change is a <see cref="RunTrigger"/> allowed by <see cref="RunTransitions"/>.</summary>
public enum RunLifecycle
{
    Pending = 0,
    Running = 1,
    /// <summary>Running, but no GPU silo is in the cluster: it goes on by itself when one joins.</summary>
    WaitingForGpu = 2,
    Paused = 3,
    Completed = 4,
    Cancelled = 5,
    Failed = 6,
}

/// <summary>What asks a run to change state: a user (start, pause, resume, cancel) or its driver (the rest).</summary>
public enum RunTrigger
{
    Start,
    Pause,
    Resume,
    Cancel,
    Complete,
    /// <summary>A phase failed in a way retrying will not mend (bad inputs, or the same error too often).</summary>
    Fail,
    /// <summary>Training produced NaN or Inf: paused so that a user can change the spec and resume.</summary>
    Diverge,
    LoseGpu,
    FindGpu,
}

/// <summary>The run state machine: the one table of allowed transitions, and the states' names on the wire.</summary>
public static class RunTransitions
{
    private static readonly Dictionary<(RunLifecycle From, RunTrigger Trigger), RunLifecycle> Table = new()
    {
        [(RunLifecycle.Pending, RunTrigger.Start)] = RunLifecycle.Running,
        [(RunLifecycle.Running, RunTrigger.Pause)] = RunLifecycle.Paused,
        [(RunLifecycle.WaitingForGpu, RunTrigger.Pause)] = RunLifecycle.Paused,
        [(RunLifecycle.Paused, RunTrigger.Resume)] = RunLifecycle.Running,
        [(RunLifecycle.Failed, RunTrigger.Resume)] = RunLifecycle.Running,
        [(RunLifecycle.Running, RunTrigger.Cancel)] = RunLifecycle.Cancelled,
        [(RunLifecycle.WaitingForGpu, RunTrigger.Cancel)] = RunLifecycle.Cancelled,
        [(RunLifecycle.Paused, RunTrigger.Cancel)] = RunLifecycle.Cancelled,
        [(RunLifecycle.Failed, RunTrigger.Cancel)] = RunLifecycle.Cancelled,
        [(RunLifecycle.Running, RunTrigger.Complete)] = RunLifecycle.Completed,
        [(RunLifecycle.Running, RunTrigger.Fail)] = RunLifecycle.Failed,
        [(RunLifecycle.WaitingForGpu, RunTrigger.Fail)] = RunLifecycle.Failed,
        [(RunLifecycle.Running, RunTrigger.Diverge)] = RunLifecycle.Paused,
        [(RunLifecycle.WaitingForGpu, RunTrigger.Diverge)] = RunLifecycle.Paused,
        [(RunLifecycle.Running, RunTrigger.LoseGpu)] = RunLifecycle.WaitingForGpu,
        [(RunLifecycle.WaitingForGpu, RunTrigger.FindGpu)] = RunLifecycle.Running,
    };

    public static bool TryNext(RunLifecycle from, RunTrigger trigger, out RunLifecycle next) => Table.TryGetValue((from, trigger), out next);

    public static IEnumerable<(RunLifecycle From, RunTrigger Trigger, RunLifecycle To)> All =>
        Table.Select(kv => (kv.Key.From, kv.Key.Trigger, kv.Value));

    /// <summary>A driver loop works on the run (and a durable reminder restarts it after a crash) only in these states.</summary>
    public static bool IsDriving(this RunLifecycle state) => state is RunLifecycle.Running or RunLifecycle.WaitingForGpu;

    public static bool IsTerminal(this RunLifecycle state) => state is RunLifecycle.Completed or RunLifecycle.Cancelled;

    /// <summary>The state's name in the API and the CLI: pending, running, waiting_for_gpu, paused, completed, cancelled, failed.</summary>
    public static string WireName(this RunLifecycle state) => state switch
    {
        RunLifecycle.WaitingForGpu => "waiting_for_gpu",
        _ => state.ToString().ToLowerInvariant(),
    };

    public static string Verb(this RunTrigger trigger) => trigger switch
    {
        RunTrigger.LoseGpu => "wait for a GPU silo in",
        RunTrigger.FindGpu => "continue on a GPU silo",
        _ => trigger.ToString().ToLowerInvariant(),
    };
}
