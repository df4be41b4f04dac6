using System.Text.RegularExpressions;

namespace OnlineAlign.Grains.Runs;

/// <summary>What the round driver does about a failed phase call or state write.</summary>
public enum FailureAction
{
    /// <summary>No GPU silo: park the run visibly (waiting for a GPU) and try again after <see cref="FailureDecision.Delay"/>.</summary>
    WaitForGpu,
    /// <summary>Training diverged: pause for the user; the last committed checkpoint is intact.</summary>
    PauseDiverged,
    /// <summary>A checkpoint failed its hash check: drop the rounds from <see cref="FailureDecision.CorruptRound"/> on and redo them.</summary>
    RollBack,
    /// <summary>End the run as failed.</summary>
    Fail,
    /// <summary>Try the phase again after <see cref="FailureDecision.Delay"/>.</summary>
    Retry,
    /// <summary>Count one more failed attempt of this phase with these inputs, then ask <see cref="FailurePolicy.AfterAttempts"/>.</summary>
    CountAttempt,
}

/// <summary>
/// A decision of <see cref="FailurePolicy"/>. <see cref="Why"/> is said after the round and phase in a failed
/// run's error; <see cref="WithPhase"/> false: the error names the round only.
/// </summary>
public sealed record FailureDecision(FailureAction Action, TimeSpan Delay = default, int CorruptRound = -1, string? Why = null, bool WithPhase = true)
{
    /// <summary>The error a failed run shows for this decision, from the phase that failed and the failure's message.</summary>
    public string Error(int round, string phase, string message) =>
        !WithPhase ? $"round {round}: {message}"
        : Why is null ? $"round {round} {phase}: {message}"
        : $"round {round} {phase} {Why}: {message}";
}

/// <summary>
/// The run's failure policy, as pure code: from the kind of failure and the counts so far, what to do next.
/// The round driver carries the decisions out (state writes, waits); nothing here does any I/O, so every rule
/// is tested in-process (FailurePolicyTests).
/// </summary>
public static partial class FailurePolicy
{
    /// <summary>A silo lost, a timeout or storage down this many times in a row on one phase ends the run as failed.</summary>
    public const int MaxTransientAttempts = 20;

    /// <summary>How long a run without a GPU silo waits before it tries again.</summary>
    public static readonly TimeSpan GpuWait = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The first decision about a failure. <paramref name="transientFailures"/>: this one included, how many failures
    /// in a row the driver has seen since a step last succeeded. <paramref name="message"/>: the failure's message
    /// (a corrupt checkpoint's names the round folder, which says how far to roll back).
    /// </summary>
    public static FailureDecision Decide(FailureKind kind, int transientFailures, string message) => kind switch
    {
        FailureKind.NoGpuSilo => new(FailureAction.WaitForGpu, GpuWait),
        FailureKind.Diverged => new(FailureAction.PauseDiverged),
        // A corrupt checkpoint whose round cannot be told cannot be rolled back past: the run fails.
        FailureKind.CorruptCheckpoint => CorruptRoundIn(message) is { } round
            ? new(FailureAction.RollBack, CorruptRound: round) : new(FailureAction.Fail, WithPhase: false),
        FailureKind.BadInput => new(FailureAction.Fail),
        FailureKind.Transient when transientFailures < MaxTransientAttempts => new(FailureAction.Retry, Backoff(transientFailures)),
        // Deterministic, disk full, or transient too many times: attempts of this phase with these inputs are counted.
        _ => new(FailureAction.CountAttempt),
    };

    /// <summary>
    /// After a counted attempt: fail the run once <paramref name="attempts"/> reach the limit (the spec's
    /// max_phase_attempts, at least 1; one for a transient failure, which has had its retries already), else retry.
    /// <paramref name="diskFull"/>: where a disk-full failure says the disk is (see <see cref="FailureClassifier.DiskFull"/>).
    /// </summary>
    public static FailureDecision AfterAttempts(FailureKind kind, int attempts, int maxPhaseAttempts, string? diskFull = null)
    {
        int max = MaxAttempts(kind, maxPhaseAttempts);
        if (attempts < max) return new(FailureAction.Retry, Backoff(attempts));
        string why = kind == FailureKind.Transient ? $"{MaxTransientAttempts} transient failures in a row"
            : kind == FailureKind.DiskFull ? $"failed {attempts} times: disk full ({diskFull ?? "disk"})"
            : $"failed {attempts} times with the same inputs";
        return new(FailureAction.Fail, Why: why);
    }

    /// <summary>How many counted attempts a phase gets for a failure of this kind.</summary>
    public static int MaxAttempts(FailureKind kind, int maxPhaseAttempts) => kind == FailureKind.Transient ? 1 : Math.Max(1, maxPhaseAttempts);

    /// <summary>
    /// The attempt count after one more failure of the phase <paramref name="key"/>: a different phase (or the
    /// same one with new inputs) starts again from one.
    /// </summary>
    public static (string Key, int Attempts) CountAttempt(string? failingPhase, int failedAttempts, string key) =>
        (key, failingPhase == key ? failedAttempts + 1 : 1);

    /// <summary>A phase with these inputs: the round, the phase and the epoch (a rollback's new epoch means new inputs).</summary>
    public static string AttemptKey(int round, string phase, int epoch) => $"{round}/{phase}/{epoch}";

    /// <summary>Exponential backoff: 2, 4, 8, ... seconds, at most 30.</summary>
    public static TimeSpan Backoff(int attempt) => TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, attempt)));

    /// <summary>How a failure is named in the log.</summary>
    public static string Describe(FailureKind kind) => kind switch
    {
        FailureKind.Transient => "transient",
        FailureKind.DiskFull => "disk full",
        _ => "deterministic",
    };

    /// <summary>The round whose checkpoint a corrupt-checkpoint message names (its folder, round-NNNN/), or null.</summary>
    public static int? CorruptRoundIn(string message) =>
        RoundFolder().Match(message) is { Success: true } match ? int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;

    [GeneratedRegex(@"round-(\d{4})/")]
    private static partial Regex RoundFolder();
}
