using OnlineAlign.Contracts;
using OnlineAlign.Grains.Workers;
using OnlineAlign.Pipeline.Specs;

namespace OnlineAlign.Grains.Placement;

/// <summary>Answers for the silo it lives on (placed by its key, see <see cref="OnSiloOfItsKeyAttribute"/>).</summary>
[OnSiloOfItsKey]
public sealed class SiloLoadGrain(WorkerCensus census, MemoryLedger ledger, WorkerSettings settings) : Grain, ISiloLoadGrain
{
    public Task<SiloLoad> Load(string exceptRun)
    {
        // The silo's own device (a spec's "auto"): its memory less what the other runs' workers reserved here.
        long total = settings.Budget(new RunSpec { Device = "auto" })?.Bytes ?? 0;
        return Task.FromResult(new SiloLoad(census.Runs(exceptRun), total - ledger.Reserved(except: exceptRun).DeviceBytes));
    }
}
