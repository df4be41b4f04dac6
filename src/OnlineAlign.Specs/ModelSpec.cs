namespace OnlineAlign.Specs;

/// <summary>The model a run aligns (runs.proto ModelSpec): a built-in one or a Hugging Face folder, and how prompts are formatted.</summary>
public sealed record ModelSpec
{
    /// <summary>auto: the folder's own chat_template, run as transformers runs it (plain text where it has none).</summary>
    public static readonly string[] ChatTemplates = ["auto", "plain", "chatml", "llama3"];

    public string Builtin { get; init; } = "tiny";
    /// <summary>A Hugging Face folder (config.json, safetensors, tokenizer.json); when set it is the model, not Builtin.</summary>
    public string? HfFolder { get; init; }
    /// <summary>Train LoRA adapters on a frozen base instead of every weight (null: full fine-tuning).</summary>
    public LoraSpec? Lora { get; init; }
    public string ChatTemplate { get; init; } = "auto";

    /// <summary>
    /// Every bad field, named by its path. Whether the folder exists and what it holds, and whether Builtin names a
    /// built-in model, are the file checks' (they need the model code and the silo's data roots).
    /// </summary>
    public IReadOnlyList<string> Problems(SpecLimits limits)
    {
        var p = new SpecProblems("model");
        p.Length("builtin", Builtin, limits.TextLength);
        p.Length("hf_folder", HfFolder, limits.PathLength);
        p.OneOf("chat_template", ChatTemplate, ChatTemplates, limits.TextLength);
        if (string.IsNullOrEmpty(HfFolder) && ChatTemplate is not ("auto" or "plain") && ChatTemplates.Contains(ChatTemplate))
            p.Add($"model.chat_template '{ChatTemplate}': built-in models read plain text (use plain or auto)");
        return Lora is null ? p.List : [.. p.List, .. Lora.Problems(limits)];
    }
}
