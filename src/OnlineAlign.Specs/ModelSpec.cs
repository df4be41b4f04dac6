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
    /// M0 of a Hugging Face run: the base model hf_folder was fine-tuned from (same tokenizer and vocabulary), which CREAM's
    /// first round and self_consistent's implicit reward compare the policy with (log pi_M1 - log pi_M0). Null: the policy's
    /// own likelihood stands in. A built-in model's M0 is its pretraining (<see cref="PretrainSteps"/>).
    /// </summary>
    public string? BaseFolder { get; init; }
    /// <summary>
    /// A built-in model's pretraining: steps of next-token training on the task's text without its instruction template
    /// ("4213 1234", not "sort 4213=" then "1234") before the warm start (IFT + EFT) makes M1 from it. That pretrained model
    /// is M0, so CREAM's round-1 comparison is between two real models. 0: M0 is the random initialisation.
    /// </summary>
    public int PretrainSteps { get; init; } = 200;

    /// <summary>
    /// Every bad field, named by its path. Whether the folder exists and what it holds, and whether Builtin names a
    /// built-in model, are the file checks' (they need the model code and the silo's data roots).
    /// </summary>
    public IReadOnlyList<string> Problems(SpecLimits limits)
    {
        var p = new SpecProblems("model");
        p.Length("builtin", Builtin, limits.TextLength);
        p.Length("hf_folder", HfFolder, limits.PathLength);
        p.Length("base_folder", BaseFolder, limits.PathLength);
        if (!string.IsNullOrEmpty(BaseFolder) && string.IsNullOrEmpty(HfFolder))
            p.Add("model.base_folder needs model.hf_folder: a built-in model's M0 is its own pretraining (model.pretrain_steps)");
        p.Range("pretrain_steps", PretrainSteps, 0, limits.SftSteps);
        p.OneOf("chat_template", ChatTemplate, ChatTemplates, limits.TextLength);
        if (string.IsNullOrEmpty(HfFolder) && ChatTemplate is not ("auto" or "plain") && ChatTemplates.Contains(ChatTemplate))
            p.Add($"model.chat_template '{ChatTemplate}': built-in models read plain text (use plain or auto)");
        return Lora is null ? p.List : [.. p.List, .. Lora.Problems(limits)];
    }
}
