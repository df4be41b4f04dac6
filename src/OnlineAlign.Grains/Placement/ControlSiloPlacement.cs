using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace OnlineAlign.Grains.Placement;

/// <summary>
/// Places an orchestration grain (a run, the registry, the GPU ledger) on a silo that is not GPU-only: a control silo,
/// or an all-in-one one. Without it Orleans' default placement may put a run's grain on a GPU silo, where the kill of that
/// silo takes the orchestrator down with the worker and its tensor work competes with the run's bookkeeping.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class ControlSiloPreferredAttribute() : PlacementFilterAttribute(new ControlSiloPlacementFilterStrategy());

public sealed class ControlSiloPlacementFilterStrategy() : PlacementFilterStrategy(0);

/// <summary>
/// Keeps the silos whose role (metadata "onlinealign.role") is not "gpu". Where none is left (every control silo is down,
/// or their metadata has not arrived yet) it keeps them all: a run goes on orchestrated from a GPU silo rather than
/// failing to place, and moves back to a control silo when that activation ends.
/// </summary>
public sealed class ControlSiloPlacementFilterDirector(SiloMetadataView metadata) : IPlacementFilterDirector
{
    public const string RoleKey = "onlinealign.role";

    public IEnumerable<SiloAddress> Filter(PlacementFilterStrategy filterStrategy, PlacementTarget target, IEnumerable<SiloAddress> silos)
    {
        var all = silos.ToList();
        var control = all.Where(silo => metadata.Of(silo).GetValueOrDefault(RoleKey) is { } role && role != "gpu").ToList();
        return control.Count > 0 ? control : all;
    }
}
