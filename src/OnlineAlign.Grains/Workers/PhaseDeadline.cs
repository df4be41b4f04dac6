using OnlineAlign.Contracts;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// A phase attempt's wall-time budget (budget.max_phase_seconds): the phase runs under a token that its caller's
/// cancellation or the budget's timer cancels. A phase stopped by the timer fails with "phase X exceeded
/// budget.max_phase_seconds=N" as a PhaseFailedException, which the orchestrator counts against max_phase_attempts like
/// any failure that is not transient: a phase that never finishes is never retried forever. A caller's own cancellation
/// (pause, cancel) stays a cancellation.
/// </summary>
public sealed class PhaseDeadline : IDisposable
{
    private readonly CancellationTokenSource _timer;
    private readonly CancellationTokenSource _linked;
    private readonly CancellationToken _caller;

    /// <param name="seconds">the budget; 0 or less: none (a spec stored before the budget existed)</param>
    /// <param name="time">the clock (tests pass one they advance by hand)</param>
    public PhaseDeadline(string phase, int seconds, CancellationToken caller, TimeProvider? time = null)
    {
        _caller = caller;
        _timer = seconds > 0 ? new CancellationTokenSource(TimeSpan.FromSeconds(seconds), time ?? TimeProvider.System) : new CancellationTokenSource();
        _linked = CancellationTokenSource.CreateLinkedTokenSource(caller, _timer.Token);
        Message = $"phase {phase} exceeded budget.max_phase_seconds={seconds}";
    }

    public CancellationToken Token => _linked.Token;

    /// <summary>The budget ran out (and the caller did not cancel first).</summary>
    public bool Exceeded => _timer.IsCancellationRequested && !_caller.IsCancellationRequested;

    public string Message { get; }

    /// <summary>Runs a phase attempt within its budget; whatever it throws once the budget ran out becomes the budget's failure.</summary>
    public static async Task<T> Run<T>(string phase, int seconds, CancellationToken caller, Func<CancellationToken, Task<T>> work, TimeProvider? time = null)
    {
        using var deadline = new PhaseDeadline(phase, seconds, caller, time);
        try { return await work(deadline.Token); }
        catch (Exception) when (deadline.Exceeded) { throw new PhaseFailedException(deadline.Message); }
    }

    public void Dispose()
    {
        _linked.Dispose();
        _timer.Dispose();
    }
}
