using System.Diagnostics.CodeAnalysis;
using OnlineAlign.Contracts;
using Orleans.Serialization;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// The one door to a run's persisted state. The run grain is reentrant (status, listing and watching answer while
/// a phase runs), so every write goes through one gate: a user's transition and the driver's phase records never
/// race on the ETag. Readers see only what is durable (<see cref="Durable"/>).
/// </summary>
[SuppressMessage("Design", "CA1001", Justification = "SemaphoreSlim without a wait handle; a driver loop outliving the activation may still write through it")]
internal sealed class RunStateGate(string runId, IPersistentState<RunState> state, DeepCopier<RunState> copier)
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>The working state: what the driver changes in memory (the phase being worked on) and writes.</summary>
    public RunState State => state.State;

    /// <summary>The state as last written: what readers are shown.</summary>
    public RunState Durable { get; private set; } = new();

    /// <summary>On activation: what was read from storage is durable.</summary>
    public void Loaded() => Durable = copier.Copy(State);

    /// <summary>Waits for the gate; <see cref="Exit"/> in a finally block lets the next writer in.</summary>
    public Task Enter() => _gate.WaitAsync();

    public void Exit() => _gate.Release();

    /// <summary>Changes and persists the state, in turn with every other write of this activation.</summary>
    public async Task Persist(Action<RunState> change)
    {
        await Enter();
        try { await WriteLocked(change); }
        finally { Exit(); }
    }

    /// <summary>
    /// The one place the state is changed and written; the caller holds the gate. A failed write puts back the
    /// last durable state, so memory never runs ahead of storage.
    /// </summary>
    public async Task WriteLocked(Action<RunState> change)
    {
        change(State);
        State.Version++;
        try { await state.WriteStateAsync(); }
        catch
        {
            state.State = copier.Copy(Durable);
            throw;
        }
        Durable = copier.Copy(State);
    }

    /// <summary>The state a trigger leads to from <paramref name="s"/>'s, or a <see cref="RunStateException"/> naming both.</summary>
    public RunLifecycle Next(RunState s, RunTrigger trigger) => RunTransitions.TryNext(s.Lifecycle, trigger, out var next) ? next
        : throw new RunStateException($"cannot {trigger.Verb()} run '{runId}': it is {s.Lifecycle.WireName()}");
}
