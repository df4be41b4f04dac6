using OnlineAlign.Contracts;

namespace OnlineAlign.Grains.Runs;

/// <summary>
/// A run's persisted state. The committed rounds (with their checkpoint manifests) are the truth a
/// resume starts from; a round counts only once its record is written here.
/// </summary>
[GenerateSerializer]
public sealed class RunState
{
    [Id(0)] public RunSpec? Spec { get; set; }
    [Id(1)] public string State { get; set; } = "pending";
    [Id(2)] public int Round { get; set; }
    [Id(3)] public string Phase { get; set; } = "";
    [Id(4)] public string? Error { get; set; }
    [Id(5)] public ModelPointer? Initial { get; set; }
    [Id(6)] public List<RoundRecord> Rounds { get; set; } = new();
    [Id(7)] public DateTime CreatedUtc { get; set; }
    /// <summary>The round whose generate phase finished, and its output (one blob per shard): not redone after a crash.</summary>
    [Id(8)] public int GenerationRound { get; set; }
    [Id(9)] public List<ModelPointer> Generations { get; set; } = new();

    public static readonly string[] Terminal = ["completed", "cancelled", "failed"];
}
