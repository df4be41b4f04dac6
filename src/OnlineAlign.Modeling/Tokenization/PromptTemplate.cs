namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// A simple chat template: system, user and assistant markers around the text. The formatted prompt
/// ends with the assistant marker, so the model's continuation is the response.
/// </summary>
public sealed record PromptTemplate(string SystemPrefix, string UserPrefix, string AssistantPrefix, string TurnEnd)
{
    /// <summary>Raw text: no markers (tiny models trained on bare task strings).</summary>
    public static readonly PromptTemplate Plain = new("", "", "", "");

    /// <summary>ChatML, as used by Qwen2 instruct models.</summary>
    public static readonly PromptTemplate ChatML = new("<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n", "<|im_end|>\n");

    /// <summary>Llama-3 instruct headers.</summary>
    public static readonly PromptTemplate Llama3 = new(
        "<|start_header_id|>system<|end_header_id|>\n\n", "<|start_header_id|>user<|end_header_id|>\n\n",
        "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>");

    public static PromptTemplate ByName(string name) => name switch
    {
        "plain" => Plain,
        "chatml" => ChatML,
        "llama3" => Llama3,
        _ => throw new ArgumentException($"prompt template '{name}' is not one of plain, chatml, llama3"),
    };

    public string Format(string user, string? system = null) =>
        (string.IsNullOrEmpty(system) || SystemPrefix.Length == 0 ? "" : SystemPrefix + system + TurnEnd)
        + UserPrefix + user + (UserPrefix.Length == 0 ? "" : TurnEnd) + AssistantPrefix;
}
