namespace OnlineAlign.Modeling.Templates;

/// <summary>
/// A chat template that cannot be parsed or run: the message names the template line, so a user can find the
/// construct in their tokenizer_config.json or chat_template.jinja.
/// </summary>
public sealed class TemplateException(string message, int line, bool raised = false)
    : Exception(line > 0 ? $"line {line}: {message}" : message)
{
    /// <summary>The template line (1-based) the error is on, or 0 when it is not tied to one.</summary>
    public int Line { get; } = line;

    /// <summary>True when the template itself called raise_exception (it refuses the conversation).</summary>
    public bool Raised { get; } = raised;
}

/// <summary>
/// What one render may spend. A template comes with a model folder, which is untrusted input: a loop over
/// range(10**9), a recursive macro or a string doubled in a loop must fail with a clear error, never hang or exhaust memory.
/// </summary>
public sealed record TemplateLimits
{
    public static readonly TemplateLimits Default = new();

    /// <summary>Largest template source, in characters.</summary>
    public int MaxSourceChars { get; init; } = 1 << 20;

    /// <summary>Largest rendered text (and largest string value built while rendering), in characters.</summary>
    public int MaxOutputChars { get; init; } = 4 << 20;

    /// <summary>Loop iterations (every for loop together) and items a range() may produce in one render.</summary>
    public long MaxLoopIterations { get; init; } = 1_000_000;

    /// <summary>Nested macro calls, and nesting of blocks and expressions when parsing.</summary>
    public int MaxDepth { get; init; } = 100;

    /// <summary>Wall-clock time of one render.</summary>
    public TimeSpan MaxTime { get; init; } = TimeSpan.FromSeconds(5);
}
