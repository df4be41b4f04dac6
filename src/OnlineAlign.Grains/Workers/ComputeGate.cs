using System.Diagnostics.CodeAnalysis;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// How many phases compute on a silo's device at once (Silo:MaxConcurrentComputations). Every run's worker has its
/// own model thread; without a gate, each run in progress (and each cancelled phase still reaching its next check)
/// would hold its models' activations in device memory at the same time. Phases beyond the limit wait their turn,
/// cancellable while they wait; results do not depend on the order.
/// </summary>
// Not IDisposable: a SemaphoreSlim used only through WaitAsync/Release holds no wait handle, and the gate lives as long
// as the silo (disposing it at shutdown would fault phases still waiting).
[SuppressMessage("Design", "CA1001", Justification = "SemaphoreSlim without a wait handle; lives as long as the silo")]
public sealed class ComputeGate(int concurrency)
{
    private readonly SemaphoreSlim _slots = new(Math.Max(1, concurrency), Math.Max(1, concurrency));

    public int Concurrency { get; } = Math.Max(1, concurrency);

    public async Task<T> RunAsync<T>(Func<Task<T>> work, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken);
        try { return await work(); }
        finally { _slots.Release(); }
    }
}
