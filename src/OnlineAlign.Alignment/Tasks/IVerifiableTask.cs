namespace OnlineAlign.Alignment.Tasks;

/// <summary>A prompt with an optional reference answer (from a built-in task or a user's JSONL line).</summary>
/// <summary>A prompt (and its answer where the task has one); Line is its line in a JSONL file (0: not from a file).</summary>
public sealed record PromptItem(string Prompt, string? Answer = null, int Line = 0);

/// <summary>
/// A small task whose answers can be checked: seeded prompt generation, a verifier, and demonstrations
/// (optionally noisy, so a model warm-started on them starts clearly imperfect).
/// </summary>
public interface IVerifiableTask
{
    string Name { get; }
    /// <summary>Prompts for a split ("validation" or "test": that evaluation part of the prompt space; any other name, e.g. "train" or
    /// "eft", a stream from the training part, <see cref="PromptStreams"/>); the same seed gives the same prompts.</summary>
    IReadOnlyList<PromptItem> Prompts(int count, int seed, string split);
    /// <summary>True when the response (text after the prompt, before EOS) answers the prompt correctly.</summary>
    bool Verify(PromptItem item, string response);
    /// <summary>A demonstration response; with probability noise, a plausible wrong one.</summary>
    string Demonstrate(PromptItem item, Random random, double noise);
}
