using OnlineAlign.Contracts;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// A run's persisted state. The committed rounds (with their checkpoint manifests) are the truth a
/// resume starts from; a round counts only once its record is written here. Within the round in
/// progress, each finished phase's output is recorded as soon as it exists and is never redone.
/// </summary>
[GenerateSerializer]
public sealed class RunState
{
    /// <summary>
    /// The shape of the state this version writes. 2: the spec's model and prompts are sections (before: top-level
    /// fields, which this version would read as defaults). A run saved in another format is never driven here.
    /// </summary>
    public const int CurrentFormat = 2;

    [Id(41)] public int Format { get; set; }
    [Id(0)] public RunSpec? Spec { get; set; }
    [Id(12)] public RunLifecycle Lifecycle { get; set; }
    [Id(2)] public int Round { get; set; }
    [Id(3)] public string Phase { get; set; } = "";
    [Id(4)] public string? Error { get; set; }
    [Id(5)] public BlobRef? Initial { get; set; }
    /// <summary>A built-in run's M0 as the prepare phase stored it (null: none, or prepared before it was stored).</summary>
    [Id(43)] public BlobRef? BeforeWarmStart { get; set; }
    [Id(6)] public List<RoundRecord> Rounds { get; set; } = new();
    [Id(7)] public DateTime CreatedUtc { get; set; }
    [Id(10)] public RoundProgress? Current { get; set; }
    /// <summary>How many times the run rolled back past a corrupt checkpoint (part of every phase's identity).</summary>
    [Id(11)] public int Epoch { get; set; }
    /// <summary>Incremented by every write: answers carry it, so the latest of several is known.</summary>
    [Id(13)] public long Version { get; set; }
    /// <summary>The client's request id StartRun was called with (a retried request answers the same run).</summary>
    [Id(14)] public string? RequestId { get; set; }
    /// <summary>The phase whose attempts are being counted ("round/phase/epoch"), and how many of them failed.</summary>
    [Id(15)] public string? FailingPhase { get; set; }
    [Id(16)] public int FailedAttempts { get; set; }
    /// <summary>Round 0: the initial policy evaluated before the first round, so every table starts from it.</summary>
    [Id(17)] public RoundRecord? Baseline { get; set; }
    /// <summary>Rounds a rollback past a corrupt checkpoint discarded, kept for ListRounds and export (oldest first).</summary>
    [Id(30)] public List<RoundRecord> Superseded { get; set; } = new();
    /// <summary>Checkpoint manifests retention marked deleted whose blobs are not all deleted yet (retried after each commit).</summary>
    [Id(31)] public List<string> PendingDeletes { get; set; } = new();
    /// <summary>The most generation replicas any round used (with `generation_replicas: 0` it follows the GPU silos).</summary>
    [Id(40)] public int ReplicasUsed { get; set; }
    /// <summary>A forked run's parent run and round, and its round-0 checkpoint copied from there (null: started from a spec).</summary>
    [Id(42)] public RunLineage? ForkedFrom { get; set; }

    /// <summary>
    /// The round being worked on and its phase, as status reports them. Round and Phase are set in memory as a phase is
    /// entered and reach storage only with the next write, so a state just read back (a silo restarted, the run woken)
    /// can name the last round entered before it (round 0's evaluate while round 1 is recorded as started). A round in
    /// progress is told by its recorded outputs instead: its number, and the first phase without an output, which is the
    /// phase the driver enters next (and the one it is in, once entered).
    /// </summary>
    public (int Round, string Phase) InProgress() => Current is not { } c ? (Round, Phase)
        : (c.Round, c.Generations.Count == 0 ? "generate" : c.Judged is null ? "judge" : c.Pairs is null ? "pairs" : c.Trained is null ? "train" : "evaluate");

    /// <summary>Why this version must not drive the run: its state was saved in another format (null: it may, or there is no run).</summary>
    public string? FormatProblem(string runId) => Spec is null || Format == CurrentFormat ? null
        : $"run '{runId}' was saved in state format {Format} by another OnlineAlign version; this one reads format {CurrentFormat}. " +
          "Its state and checkpoints are untouched in storage: resume it with the version that started it";
}
