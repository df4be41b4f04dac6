namespace OnlineAlign.Alignment.Tasks;

/// <summary>
/// The three disjoint parts of a built-in task's prompt space, fixed by a stable hash of the prompt's text: test (one
/// prompt in ten: reported only), validation (one in ten: for choosing recipes, rounds and hyperparameters) and
/// training (the rest: warm-start demonstrations, EFT prompts, round prompts). A prompt's part never depends on a seed,
/// so no seed's training stream can hold a validation or test prompt, and choosing on validation never sees the test.
/// </summary>
public static class PromptStreams
{
    public const string Train = "train";
    public const string Validation = "validation";
    public const string Test = "test";

    /// <summary>The streams a run can evaluate on (prompts.eval_stream).</summary>
    public static readonly string[] Evaluation = [Validation, Test];

    /// <summary>The part of the prompt space a prompt belongs to: test, validation or train.</summary>
    public static string Of(string prompt) => (StableHash(prompt) % 10) switch
    {
        0 => Test,
        1 => Validation,
        _ => Train,
    };

    /// <summary>The part a split name draws from: "test" and "validation" their own; any other name (train, eft, ...) a stream
    /// of the training part.</summary>
    public static string Part(string split) => split is Test or Validation ? split : Train;

    /// <summary>FNV-1a: the same in every process (string.GetHashCode is not).</summary>
    public static uint StableHash(string text)
    {
        uint hash = 2166136261;
        foreach (char c in text) hash = (hash ^ c) * 16777619;
        return hash;
    }
}
