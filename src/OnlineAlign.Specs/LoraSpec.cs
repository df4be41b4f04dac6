using System.Text.Json.Serialization;

namespace OnlineAlign.Specs;

/// <summary>
/// A LoRA adapter (runs.proto LoraSpec; PEFT's LoraConfig names): W x + scaling * B A dropout(x), with A [r, in] and
/// B [out, r]. The one place that says what a valid adapter is: the spec, the trainer and a PEFT folder's settings.
/// </summary>
public sealed record LoraSpec
{
    /// <summary>Every linear layer of a decoder block: what an adapter may target.</summary>
    public static readonly string[] AdaptableModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
    public const int MaxRank = 1024;

    public int Rank { get; init; } = 16;
    public double Alpha { get; init; } = 32;
    public double Dropout { get; init; }
    public IReadOnlyList<string> TargetModules { get; init; } = ["q_proj", "k_proj", "v_proj", "o_proj"];
    /// <summary>Rank-stabilised LoRA: scaling alpha / sqrt(r) instead of alpha / r.</summary>
    public bool UseRslora { get; init; }
    /// <summary>A PEFT adapter folder to start from; its adapter_config.json then decides r, alpha, dropout and the targets.</summary>
    public string? AdapterFolder { get; init; }

    [JsonIgnore]
    public double Scaling => UseRslora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

    /// <summary>
    /// Every bad field, each named under <paramref name="section"/> (a spec path, or the adapter_config.json it was read
    /// from). With an adapter folder only the path is checked here: the folder's own settings rule.
    /// </summary>
    public IReadOnlyList<string> Problems(SpecLimits limits, string section = "model.lora")
    {
        var p = new SpecProblems(section);
        p.Length("adapter_folder", AdapterFolder, limits.PathLength);
        if (AdapterFolder is not null) return p.List;
        p.Range("r", Rank, 1, MaxRank);
        p.Real("alpha", Alpha, 0, minIncluded: false, 1e6);
        if (!double.IsFinite(Dropout) || Dropout < 0 || Dropout >= 1) p.Add($"{section}.dropout must be in [0, 1), got {Dropout}");
        if (TargetModules.Count == 0) p.Add($"{section}.target_modules is empty; name some of {string.Join(", ", AdaptableModules)}");
        // A huge list is refused by its length before any name in it is looked at or quoted.
        else if (TargetModules.Count > AdaptableModules.Length)
            p.Add($"{section}.target_modules names {TargetModules.Count} modules; there are {AdaptableModules.Length} to adapt");
        else foreach (var name in TargetModules.Where(m => !AdaptableModules.Contains(m)).Distinct())
            p.Add($"{section}.target_modules: '{(name.Length > 40 ? name[..40] + "..." : name)}' is not one of {string.Join(", ", AdaptableModules)}");
        return p.List;
    }

    // Value equality over the target list too: a resent start request must equal the stored spec.
    public bool Equals(LoraSpec? other) => other is not null && Rank == other.Rank && Alpha.Equals(other.Alpha) && Dropout.Equals(other.Dropout)
        && TargetModules.SequenceEqual(other.TargetModules) && UseRslora == other.UseRslora && AdapterFolder == other.AdapterFolder;

    public override int GetHashCode() => HashCode.Combine(Rank, Alpha, Dropout, string.Join(",", TargetModules), UseRslora, AdapterFolder);
}
