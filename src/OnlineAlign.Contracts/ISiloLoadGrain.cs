namespace OnlineAlign.Contracts;

/// <summary>
/// How busy one GPU silo is, asked of that silo itself (key: its address, <c>SiloAddress.ToParsableString()</c>), so
/// that a run's workers go where the fewest other runs are instead of where a hash says.
/// </summary>
[Alias("onlinealign.ISiloLoadGrain")]
public interface ISiloLoadGrain : IGrainWithStringKey
{
    /// <param name="exceptRun">a run's own workers do not count against the silo it already uses</param>
    [Alias("Load")] Task<SiloLoad> Load(string exceptRun);
}

/// <param name="Runs">other runs with a worker activation on the silo</param>
/// <param name="FreeDeviceBytes">the silo's device memory less what those runs' workers reserved</param>
[GenerateSerializer, Immutable, Alias("onlinealign.SiloLoad")]
public sealed record SiloLoad([property: Id(0)] int Runs, [property: Id(1)] long FreeDeviceBytes);
