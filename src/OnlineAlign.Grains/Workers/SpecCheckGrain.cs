using OnlineAlign.Contracts;
using OnlineAlign.Grains.Placement;
using OnlineAlign.Pipeline.Specs;

namespace OnlineAlign.Grains.Workers;

/// <summary>Validates specs on a GPU silo (see <see cref="ISpecCheckGrain"/>); stateless, so any activation will do.</summary>
[GpuSiloOnly]
public sealed class SpecCheckGrain(WorkerSettings settings) : Grain, ISpecCheckGrain
{
    public Task<List<string>> Problems(RunSpec spec) => Task.FromResult(RunSpecMapping.Problems(spec, settings.Limits, settings.DataRoots));
}
