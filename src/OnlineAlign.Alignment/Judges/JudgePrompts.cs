namespace OnlineAlign.Alignment.Judges;

/// <summary>
/// What the LLM judge reads. "rubric" is Self-Rewarding's additive 5-point rubric (the judge writes its
/// reasoning, then "Score: N"): the default for Hugging Face models. "compact" is for the built-in tasks'
/// byte-level models, whose context (128 tokens) the rubric alone (about 1,900 bytes) would overflow: the
/// question and response on one line, then "Score: N" on the next. Both end their judgement the same way,
/// so one parser reads both, and the warm start's evaluation examples (EFT) teach the compact form.
/// </summary>
public static class JudgePrompts
{
    public static readonly string[] Templates = ["rubric", "compact"];

    /// <summary>Self-Rewarding's LLM-as-a-Judge prompt (Yuan et al. 2024, Figure 2), word for word: the judge justifies its score in up to 100 words,
    /// then writes it.</summary>
    public const string Rubric =
        "Review the user's question and the corresponding response using the additive 5-point scoring system described below. " +
        "Points are accumulated based on the satisfaction of each criterion:\n" +
        "- Add 1 point if the response is relevant and provides some information related to the user's inquiry, " +
        "even if it is incomplete or contains some irrelevant content.\n" +
        "- Add another point if the response addresses a substantial portion of the user's question, " +
        "but does not completely resolve the query or provide a direct answer.\n" +
        "- Award a third point if the response answers the basic elements of the user's question in a useful way, " +
        "regardless of whether it seems to have been written by an AI Assistant or if it has elements typically found in blogs or search results.\n" +
        "- Grant a fourth point if the response is clearly written from an AI Assistant's perspective, addressing the user's question " +
        "directly and comprehensively, and is well-organized and helpful, even if there is slight room for improvement in clarity, conciseness or focus.\n" +
        "- Bestow a fifth point for a response that is impeccably tailored to the user's question by an AI Assistant, without extraneous " +
        "information, reflecting expert knowledge, and demonstrating a high-quality, engaging, and insightful answer.\n\n" +
        "User: {prompt}\n\n<response>{response}</response>\n\n" +
        "After examining the user's instruction and the response:\n" +
        "- Briefly justify your total score, up to 100 words.\n" +
        "- Conclude with the score using the format: \"Score: <total points>\"\n\n" +
        "Remember to assess from the AI Assistant perspective, utilizing web search knowledge as necessary. To evaluate the response " +
        "in alignment with this additive scoring model, we'll systematically attribute points based on the outlined criteria.";

    public const string Compact = "judge {prompt}{response}\n";

    /// <summary>What precedes the score's digit in a judgement.</summary>
    public const string ScorePrefix = "Score: ";

    /// <summary>The highest score of the 5-point scale; a checker's "correct" maps to it, "wrong" to 0.</summary>
    public const int MaxScore = 5;

    /// <summary>The template text of a template name, or the text itself when it holds both placeholders (a custom template).</summary>
    public static string Text(string template) => template switch
    {
        "rubric" => Rubric,
        "compact" => Compact,
        _ when template.Contains("{prompt}") && template.Contains("{response}") => template,
        _ => throw new ArgumentException($"judge.template '{template}' is neither one of {string.Join(", ", Templates)} nor a text with " +
            $"{{prompt}} and {{response}}"),
    };

    public static string Format(string template, string prompt, string response) =>
        Text(template).Replace("{prompt}", prompt).Replace("{response}", response);

    /// <summary>An evaluation-fine-tuning target: the judgement a judge should give (Self-Rewarding's EFT data).</summary>
    public static string Judgement(double score) => $"{ScorePrefix}{score:0}";
}
