namespace OnlineAlign.Specs;

/// <summary>How the policy samples a round's responses (runs.proto SamplingSpec).</summary>
public sealed record SamplingSpec
{
    /// <summary>0: greedy.</summary>
    public double Temperature { get; init; } = 0.8;
    public double TopP { get; init; } = 0.95;
    /// <summary>0: off.</summary>
    public int TopK { get; init; }
    /// <summary>A response's length limit; evaluation decodes up to it too.</summary>
    public int MaxNewTokens { get; init; } = 16;
    /// <summary>Sequences decoded together. Small batches are bound by per-op overhead, so on a GPU a larger batch is
    /// nearly free throughput, paid for in KV-cache memory. 0: planned from the device's memory.</summary>
    public int BatchSize { get; init; } = 64;

    public IReadOnlyList<string> Problems(SpecLimits limits)
    {
        var p = new SpecProblems("sampling");
        p.Real("temperature", Temperature, 0, minIncluded: true, limits.Coefficient);
        p.Real("top_p", TopP, 0, minIncluded: false, 1);
        p.Range("top_k", TopK, 0, limits.TopK);
        p.Range("max_new_tokens", MaxNewTokens, 1, limits.MaxNewTokens);
        p.Range("batch_size", BatchSize, 0, limits.GenerationBatchSize);
        return p.List;
    }
}
