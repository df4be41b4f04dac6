namespace OnlineAlign.Contracts;

/// <summary>
/// Checks a run spec on a GPU silo, where its files (model folder, prompt set, reward model) are read: under
/// that silo's data roots and limits, not the API silo's. Any key; keys spread the checks over GPU silos.
/// </summary>
[Alias("onlinealign.ISpecCheckGrain")]
public interface ISpecCheckGrain : IGrainWithIntegerKey
{
    /// <summary>Every problem with the spec, each naming its field; empty when it can run.</summary>
    [Alias("Problems")] Task<List<string>> Problems(RunSpec spec);

    /// <summary>The spec's memory plan on this silo's device, in words; empty where it cannot be made.</summary>
    [Alias("Plan")] Task<string> Plan(RunSpec spec);

    /// <summary>The peak device bytes of the spec's memory plan on this silo's device (placement by load); 0 where it cannot be made.</summary>
    [Alias("PlanPeak")] Task<long> PlanPeak(RunSpec spec);
}
