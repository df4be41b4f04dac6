using Orleans.Concurrency;

namespace OnlineAlign.Contracts;

/// <summary>
/// A committed round's policy served over the OpenAI-compatible API on a GPU silo (key: <see cref="ServedRoundKeys"/>):
/// the silo whose HTTP port took the request resolves the model name to the round's checkpoint and streams the answer
/// from here. The model is loaded on the first request and let go after the silo's idle time; tensor work stays on its
/// model thread.
/// </summary>
[Alias("onlinealign.IServedRoundGrain")]
public interface IServedRoundGrain : IGrainWithStringKey
{
    /// <summary>
    /// Reads the request (as `onlinealign serve` does, against the round's own tokenizer and context) and generates it: the
    /// first item is the request's header or its refusal, then each choice's text as it is decoded.
    /// </summary>
    [Alias("Generate"), ResponseTimeout("01:00:00")]
    IAsyncEnumerable<ServeChunk> Generate(ServeCall call, CancellationToken cancellationToken = default);
}

/// <summary>A request for a served round: the OpenAI request body (JSON, its model already the round's id) and the round's checkpoint.</summary>
[GenerateSerializer, Immutable]
public sealed record ServeCall
{
    [Id(0)] public bool Chat { get; init; }
    [Id(1)] public string Body { get; init; } = "";
    /// <summary>The round's checkpoint (its manifest).</summary>
    [Id(2)] public BlobRef Checkpoint { get; init; } = new();
    /// <summary>The run's round 0: the base an adapter-only (LoRA) round is served on, unmerged; null for round 0 itself.</summary>
    [Id(3)] public BlobRef? Initial { get; init; }
}

/// <summary>
/// One item of a served answer: the header (<see cref="Model"/> set), a refusal (<see cref="Status"/> set: an HTTP status, the
/// field at fault and why), or a piece of one choice's text (with its finish reason at its end).
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ServeChunk
{
    [Id(0)] public int Status { get; init; }
    [Id(1)] public string? Param { get; init; }
    [Id(2)] public string? Message { get; init; }
    [Id(3)] public string? ErrorType { get; init; }
    [Id(4)] public string? Model { get; init; }
    [Id(5)] public int PromptTokens { get; init; }
    [Id(6)] public int N { get; init; }
    [Id(7)] public bool Stream { get; init; }
    [Id(8)] public bool IncludeUsage { get; init; }
    [Id(9)] public int Index { get; init; }
    [Id(10)] public string Text { get; init; } = "";
    [Id(11)] public string? FinishReason { get; init; }
    [Id(12)] public int Generated { get; init; }
}

/// <summary>
/// Model names on a silo's OpenAI-compatible API and the served-round grain keys. A client names "RUN@N" (round N of run
/// RUN, 0 being the initial policy) or "RUN" (its latest committed round); run ids never hold '@'. The grain key adds the
/// checkpoint's manifest hash ("RUN@N:sha256"), so a round redone after a rollback is a new model, never the old one's.
/// </summary>
public static class ServedRoundKeys
{
    public static string Name(string runId, int round) => $"{runId}@{round.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    public static string Of(string runId, int round, string manifestSha256) => $"{Name(runId, round)}:{manifestSha256}";

    /// <summary>(run, round, manifest hash) of a grain key, or null when it is not one.</summary>
    public static (string Run, int Round, string Sha256)? Parse(string key)
    {
        int at = key.IndexOf('@', StringComparison.Ordinal), colon = key.IndexOf(':', StringComparison.Ordinal);
        if (at <= 0 || colon < at) return null;
        return int.TryParse(key.AsSpan(at + 1, colon - at - 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture,
            out int round) && RunIds.IsValid(key[..at]) ? (key[..at], round, key[(colon + 1)..]) : null;
    }
}
