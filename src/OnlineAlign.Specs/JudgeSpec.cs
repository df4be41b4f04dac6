namespace OnlineAlign.Specs;

/// <summary>Who scores a round's responses, and how (runs.proto JudgeSpec).</summary>
public sealed record JudgeSpec
{
    public static readonly string[] Kinds = ["implicit", "llm", "verifier", "reward_model", "majority", "likelihood", "self_consistent"];
    /// <summary>The named LLM judge prompts; any other template is a text with {prompt} and {response}.</summary>
    public static readonly string[] Templates = ["auto", "rubric", "compact"];
    public static readonly string[] Models = ["policy", "initial"];

    public string Kind { get; init; } = "self_consistent";
    /// <summary>LLM judge: judgements averaged per response.</summary>
    public int Judgements { get; init; } = 3;
    /// <summary>A reward model folder (from train-reward-model) for kind reward_model.</summary>
    public string? RewardModelFolder { get; init; }
    /// <summary>The LLM judge's prompt: auto (compact for built-in tasks, rubric otherwise), rubric (sampled judgements),
    /// compact (scored by the expected score digit), or a text with {prompt} and {response}.</summary>
    public string Template { get; init; } = "auto";
    /// <summary>The model the LLM judge runs on: policy (Self-Rewarding: the policy at the round's start) or initial
    /// (the warm-started model, frozen: its judging is not worn away by the updates).</summary>
    public string Model { get; init; } = "policy";
    /// <summary>The LLM judge's judgement length in tokens where it samples (rubric or a text template): Self-Rewarding's
    /// judge writes a justification before its score. The compact template reads the expected score digit and samples nothing.</summary>
    public int MaxNewTokens { get; init; } = 256;
    public const int MaxNewTokensLimit = 4096;

    /// <summary>Every bad field, named by its path; empty when valid.</summary>
    public IReadOnlyList<string> Problems(SpecLimits limits)
    {
        var p = new SpecProblems("judge");
        p.OneOf("kind", Kind, Kinds, limits.TextLength);
        p.Range("judgements", Judgements, 1, limits.Judgements);
        p.Length("reward_model_folder", RewardModelFolder, limits.PathLength);
        if (Template.Length > limits.JudgeTemplateLength) p.Length("template", Template, limits.JudgeTemplateLength);
        else if (!Templates.Contains(Template) && !(Template.Contains("{prompt}") && Template.Contains("{response}")))
            p.Add($"judge.template '{Cut(Template)}' is neither one of {string.Join(", ", Templates)} nor a text with {{prompt}} and {{response}}");
        p.OneOf("model", Model, Models, limits.TextLength);
        p.Range("max_new_tokens", MaxNewTokens, 1, MaxNewTokensLimit);
        return p.List;
    }

    private static string Cut(string text) => text.Length > 60 ? text[..60] + "..." : text;
}
