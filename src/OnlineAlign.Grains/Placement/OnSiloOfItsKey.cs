using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace OnlineAlign.Grains.Placement;

/// <summary>
/// Places a grain keyed by a silo's address on that silo, so that a question about a silo is answered by the silo
/// itself. A key naming no live silo leaves no candidate: the call fails, and the caller treats the silo as gone.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class OnSiloOfItsKeyAttribute() : PlacementFilterAttribute(new OnSiloOfItsKeyFilterStrategy());

public sealed class OnSiloOfItsKeyFilterStrategy() : PlacementFilterStrategy(0);

public sealed class OnSiloOfItsKeyFilterDirector : IPlacementFilterDirector
{
    public IEnumerable<SiloAddress> Filter(PlacementFilterStrategy filterStrategy, PlacementTarget target, IEnumerable<SiloAddress> silos)
    {
        string key = target.GrainIdentity.Key.ToString()!;
        return silos.Where(silo => silo.ToParsableString() == key);
    }
}
