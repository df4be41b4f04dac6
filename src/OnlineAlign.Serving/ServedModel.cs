using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using static TorchSharp.torch;

namespace OnlineAlign.Serving;

/// <summary>
/// A policy folder loaded for serving: its weights (a Hugging Face folder, or a LoRA base with its adapter kept
/// unmerged, as <see cref="PolicyCheckpoint"/> loads a round), its tokenizer and chat format, and the id clients name it by.
/// Prompts are laid out as a run lays them out (bos, then the text), so a served greedy answer is the round's own.
/// </summary>
public sealed class ServedModel : IDisposable
{
    public DecoderLM Model { get; }
    public ITextTokenizer Tokenizer { get; }
    public string Id { get; }
    public int Context => Model.Config.MaxPositions;

    public ServedModel(DecoderLM model, ITextTokenizer tokenizer, string id)
    {
        Model = model; Tokenizer = tokenizer; Id = id;
    }

    /// <param name="baseFolder">the base model folder of an adapter-only LoRA checkpoint (a LoRA run's later round); default: its base/</param>
    public static ServedModel Load(string folder, Device device, string? id = null, string? baseFolder = null)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"--folder '{folder}' does not exist");
        var tokenizer = TokenizerLoader.Load(folder);
        // An export of a LoRA run's later round carries its base in base/ (the CLI's export layout): served as it is.
        string included = Path.Combine(folder, "base");
        if (baseFolder is null && PolicyCheckpoint.IsAdapterOnly(folder) && PolicyCheckpoint.HasWeights(included)) baseFolder = included;
        var model = PolicyCheckpoint.Load(folder, device, baseFolder);
        model.eval();
        return new ServedModel(model, tokenizer, id ?? Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar)));
    }

    /// <summary>A completion's prompt: the text as it is, after bos.</summary>
    public int[] CompletionPrompt(string text) => WithBos(Tokenizer.Encode(text));

    /// <summary>
    /// A chat's prompt: the messages rendered with the folder's own chat template (add_generation_prompt), or with the
    /// fixed layout it names; a plain model (no template) gets the turns' texts, one a line, as plain runs see a prompt.
    /// </summary>
    public int[] ChatPrompt(IReadOnlyList<ChatMessage> messages) => WithBos(Tokenizer.Encode(RenderChat(Tokenizer.Chat, messages)));

    internal static string RenderChat(ChatFormat chat, IReadOnlyList<ChatMessage> messages)
    {
        if (chat.Renderer is { } renderer)
        {
            string text;
            try { text = renderer.Render(messages, addGenerationPrompt: true); }
            catch (Modeling.Templates.TemplateException e) { throw new ServeException(400, "messages",
                $"the model's chat template refused these messages: {e.Message}"); }
            return chat.LeadingBos is { } bos && text.StartsWith(bos, StringComparison.Ordinal) ? text[bos.Length..] : text;
        }
        var t = chat.Template;
        if (t.UserPrefix.Length == 0) return string.Join("\n", messages.Select(m => m.Content));
        // A fixed layout (chatml, llama3): every turn in its markers, then the assistant's header.
        var parts = new System.Text.StringBuilder();
        foreach (var m in messages)
            parts.Append(m.Role switch { "system" => t.SystemPrefix, "user" => t.UserPrefix, _ => t.AssistantPrefix }).Append(m.Content).Append(t.TurnEnd);
        return parts.Append(t.AssistantPrefix).ToString();
    }

    private int[] WithBos(int[] ids) => Tokenizer.BosId >= 0 ? [Tokenizer.BosId, .. ids] : ids;

    public void Dispose() => Model.Dispose();
}
