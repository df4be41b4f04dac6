namespace OnlineAlign.Modeling.Generation;

/// <summary>How to pick each next token. Temperature 0 means greedy.</summary>
public sealed record SamplingOptions
{
    public int MaxNewTokens { get; init; } = 64;
    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 1.0;
    public int TopK { get; init; }
    public ulong Seed { get; init; }
    /// <summary>Stop a sequence when it emits one of these (it is kept in the output).</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];
    public int PadTokenId { get; init; }

    public bool Greedy => Temperature <= 0;

    public void Validate()
    {
        if (MaxNewTokens < 1) throw new ArgumentException($"max_new_tokens must be at least 1, got {MaxNewTokens}");
        if (Temperature < 0 || double.IsNaN(Temperature)) throw new ArgumentException($"temperature must be >= 0, got {Temperature}");
        if (TopP <= 0 || TopP > 1) throw new ArgumentException($"top_p must be in (0, 1], got {TopP}");
        if (TopK < 0) throw new ArgumentException($"top_k must be >= 0 (0 = off), got {TopK}");
    }
}

/// <summary>
/// One row's own temperature and top_p, for a batch whose rows ask for different ones (a server batching concurrent
/// requests); the call's <see cref="SamplingOptions"/> give everything else (top_k, stop tokens, pad).
/// </summary>
public readonly record struct RowSampling(double Temperature, double TopP)
{
    public bool Greedy => Temperature <= 0;

    public void Validate(int row)
    {
        if (Temperature < 0 || double.IsNaN(Temperature)) throw new ArgumentException($"row {row}: temperature must be >= 0, got {Temperature}");
        if (TopP <= 0 || TopP > 1 || double.IsNaN(TopP)) throw new ArgumentException($"row {row}: top_p must be in (0, 1], got {TopP}");
    }
}

/// <summary>One generated continuation.</summary>
/// <param name="Tokens">The new tokens (ending with the stop token when one was emitted).</param>
/// <param name="LogProbs">log p(token | prefix) under the model's untempered distribution, one per new token.</param>
/// <param name="Stopped">True when a stop token ended it, false when max_new_tokens did.</param>
public sealed record Continuation(int[] Tokens, float[] LogProbs, bool Stopped);
