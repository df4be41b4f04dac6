namespace OnlineAlign.Serving;

/// <summary>What one request may ask for; over a limit the request is refused with 400 naming the field.</summary>
public sealed record ServeLimits
{
    /// <summary>Bytes of a request body (a bigger one gets 413 before it is parsed).</summary>
    public long MaxBodyBytes { get; init; } = 1 << 20;
    public int MaxN { get; init; } = 16;
    public int MaxMessages { get; init; } = 256;
    public int MaxStopSequences { get; init; } = 4;
    public int MaxStopLength { get; init; } = 256;
    /// <summary>Requests admitted at once (generating or queued for the model thread); more get 429.</summary>
    public int MaxConcurrent { get; init; } = 8;
    /// <summary>Rows (choices, over all requests) decoded together in one batch; a request with more runs alone.</summary>
    public int MaxBatchRows { get; init; } = 64;
    /// <summary>
    /// A batch's KV cache in tokens: rows x (longest prompt + longest max_tokens) of the requests batched together (the
    /// cache every row holds); a request bigger than this runs alone.
    /// </summary>
    public long MaxBatchTokens { get; init; } = 64 * 2048;
}
