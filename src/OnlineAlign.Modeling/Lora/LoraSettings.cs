namespace OnlineAlign.Modeling.Lora;

/// <summary>
/// A LoRA adapter's shape (PEFT's LoraConfig, the fields OnlineAlign supports): W x + scaling * B A dropout(x),
/// with A [r, in] and B [out, r]. The one place that says what a valid adapter is.
/// </summary>
public sealed record LoraSettings
{
    /// <summary>The projections PEFT adapts by default for Llama and Qwen2 (its target-module mapping).</summary>
    public static readonly string[] DefaultTargets = ["q_proj", "v_proj"];
    /// <summary>Every linear layer of a decoder block: what an adapter may target.</summary>
    public static readonly string[] AdaptableModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
    public const int MaxRank = 1024;

    public int Rank { get; init; } = 16;
    public double Alpha { get; init; } = 32;
    public double Dropout { get; init; }
    public IReadOnlyList<string> TargetModules { get; init; } = DefaultTargets;
    /// <summary>Rank-stabilised LoRA: scaling alpha / sqrt(r) instead of alpha / r.</summary>
    public bool UseRslora { get; init; }

    public double Scaling => UseRslora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

    /// <summary>Everything wrong with these settings, each message naming its field under <paramref name="prefix"/>.</summary>
    public IEnumerable<string> Problems(string prefix = "lora")
    {
        if (Rank < 1 || Rank > MaxRank) yield return $"{prefix}.r must be between 1 and {MaxRank}, got {Rank}";
        if (!double.IsFinite(Alpha) || Alpha <= 0 || Alpha > 1e6) yield return $"{prefix}.alpha must be a finite number in (0, 1e6], got {Alpha}";
        if (!double.IsFinite(Dropout) || Dropout < 0 || Dropout >= 1) yield return $"{prefix}.dropout must be in [0, 1), got {Dropout}";
        if (TargetModules.Count == 0) yield return $"{prefix}.target_modules is empty; name some of {string.Join(", ", AdaptableModules)}";
        foreach (var name in TargetModules.Where(m => !AdaptableModules.Contains(m)).Distinct().Take(5))
            yield return $"{prefix}.target_modules: '{(name.Length > 40 ? name[..40] + "..." : name)}' is not one of {string.Join(", ", AdaptableModules)}";
    }
}
