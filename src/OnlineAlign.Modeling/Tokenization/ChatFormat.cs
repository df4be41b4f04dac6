using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OnlineAlign.Modeling.Templates;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// How a prompt is laid out for a model and which token ids end its response: the format's name, the token that
/// closes an assistant turn, and every id that stops generation. With "auto", the model folder's own chat template
/// (Jinja) is run, as transformers' apply_chat_template runs it; "chatml" and "llama3" name fixed layouts, "plain" is
/// raw text.
/// </summary>
public sealed partial record ChatFormat(string Name, PromptTemplate Template, string? DefaultSystem, int EndOfResponse, IReadOnlyList<int> StopIds)
{
    public static readonly string[] Settings = Specs.ModelSpec.ChatTemplates;

    /// <summary>The folder's chat template, when the format runs it (setting "auto"); null for the fixed layouts.</summary>
    public ChatTemplateRenderer? Renderer { get; init; }

    /// <summary>The bos token's text, dropped from the front of a rendered prompt because the tokenizer adds bos itself.</summary>
    public string? LeadingBos { get; init; }

    /// <summary>Raw text, ending with the tokenizer's eos (built-in models and base models without a template).</summary>
    public static ChatFormat Plain(int eosId) => new("plain", PromptTemplate.Plain, null, eosId, [eosId]);

    /// <summary>
    /// The prompt laid out for the model, ending where the assistant's response begins: the chat template rendered
    /// with messages [system (when given), user] and add_generation_prompt, or the fixed layout.
    /// </summary>
    public string Format(string prompt, string? system = null)
    {
        if (Renderer is null) return Template.Format(prompt, system ?? DefaultSystem);
        var messages = new List<ChatMessage>();
        if (!string.IsNullOrEmpty(system)) messages.Add(new ChatMessage("system", system));
        messages.Add(new ChatMessage("user", prompt));
        string text;
        try { text = Renderer.Render(messages, addGenerationPrompt: true); }
        catch (TemplateException e) { throw new InvalidOperationException($"{Renderer.Source}: the chat template failed on a prompt: {e.Message}", e); }
        return LeadingBos is not null && text.StartsWith(LeadingBos, StringComparison.Ordinal) ? text[LeadingBos.Length..] : text;
    }

    /// <summary>
    /// The format for a model folder: <paramref name="setting"/> names one, or "auto" runs the folder's chat template
    /// (tokenizer_config.json's chat_template or chat_template.jinja; plain text where it has none). Stop ids are the
    /// turn's end token, the tokenizer's eos and generation_config.json's eos_token_id(s).
    /// </summary>
    /// <param name="specialTokenId">the id of a special token of the tokenizer, or null if it has none by that text</param>
    /// <param name="bosId">the bos id the tokenizer puts before every prompt, or -1</param>
    public static ChatFormat Resolve(string setting, string folder, int eosId, Func<string, int?> specialTokenId, int bosId = -1)
    {
        if (!Settings.Contains(setting)) throw new ArgumentException($"model.chat_template '{setting}' is not one of {string.Join(", ", Settings)}");
        var (template, source, bos, eos) = ReadTemplate(folder);
        var stops = new List<int>();
        if (eosId >= 0) stops.Add(eosId);
        stops.AddRange(GenerationEosIds(folder));
        if (setting == "auto" && template is not null)
            return ChatTemplateFormat.Create(template, source, bos, eos, eosId, bosId, stops, specialTokenId);

        string name = setting == "auto" ? "plain" : setting;
        if (name == "plain") return new ChatFormat(name, PromptTemplate.Plain, null, eosId, stops.Distinct().ToList());

        var format = PromptTemplate.ByName(name);
        string turnEnd = TurnEndMarker(name)!;
        foreach (var marker in new[] { turnEnd, name == "chatml" ? "<|im_start|>" : "<|start_header_id|>" })
            if (specialTokenId(marker) is null)
                throw new NotSupportedException($"model.chat_template '{name}': the tokenizer in '{folder}' has no special token {marker}");
        int end = specialTokenId(turnEnd)!.Value;
        string? system = name == "chatml" && template is not null ? DefaultChatMLSystem(template) : null;
        return new ChatFormat(name, format, system, end, stops.Prepend(end).Distinct().ToList());
    }

    /// <summary>The token that closes a turn in a family's layout.</summary>
    internal static string? TurnEndMarker(string? family) => family switch
    {
        "chatml" => "<|im_end|>",
        "llama3" => "<|eot_id|>",
        _ => null,
    };

    /// <summary>The template's family by its markers, or null.</summary>
    public static string? Recognise(string template) =>
        template.Contains("<|im_start|>") && template.Contains("<|im_end|>") ? "chatml"
        : template.Contains("<|start_header_id|>") && template.Contains("<|eot_id|>") ? "llama3"
        : null;

    /// <summary>Qwen2's template inserts a system turn when the conversation has none; the prompt must carry it too.</summary>
    private static string? DefaultChatMLSystem(string template)
    {
        var match = DefaultSystemPattern().Match(template);
        return match.Success ? match.Groups[1].Value : null;
    }

    [GeneratedRegex(@"'<\|im_start\|>system(?:\n|\\n)([^'""{}<]+)<\|im_end\|>")]
    private static partial Regex DefaultSystemPattern();

    private static (string? Template, string Source, string? Bos, string? Eos) ReadTemplate(string folder)
    {
        string jinja = Path.Combine(folder, "chat_template.jinja");
        string config = Path.Combine(folder, "tokenizer_config.json");
        var parsed = File.Exists(config) ? Parse(config) : null;
        string? bos = TokenText(parsed, "bos_token"), eos = TokenText(parsed, "eos_token");
        if (File.Exists(jinja)) return (Checkpoints.ModelFile.ReadAllText(jinja), jinja, bos, eos);
        var node = parsed?["chat_template"];
        return (node switch
        {
            null => null,
            JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
            // Several named templates: the default one is the chat format.
            JsonArray named => named.OfType<JsonObject>().FirstOrDefault(t => t["name"]?.GetValue<string>() == "default")?["template"]?.GetValue<string>()
                ?? throw new InvalidDataException($"{config}: chat_template lists templates but none named 'default'"),
            _ => throw new InvalidDataException($"{config}: chat_template must be a string or a list of named templates"),
        }, config, bos, eos);
    }

    /// <summary>
    /// A special token's text in tokenizer_config.json: a string, or an AddedToken object's content; anything else is
    /// left to the tokenizer's own checks of the file (the template then sees no such token).
    /// </summary>
    private static string? TokenText(JsonObject? config, string key) => config?[key] switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonObject o when o["content"] is JsonValue c && c.GetValueKind() == JsonValueKind.String => c.GetValue<string>(),
        _ => null,
    };

    private static IEnumerable<int> GenerationEosIds(string folder)
    {
        string path = Path.Combine(folder, "generation_config.json");
        if (!File.Exists(path)) return [];
        try
        {
            return Parse(path)?["eos_token_id"] switch
            {
                JsonArray ids => ids.Select(i => i is JsonValue v ? v.GetValue<int>() : throw new InvalidOperationException($"{i?.ToJsonString() ?? "null"} is not a number")).ToList(),
                JsonValue id when id.GetValueKind() == JsonValueKind.Number => [id.GetValue<int>()],
                _ => [],
            };
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: eos_token_id must be a token id or a list of them: {e.Message}", e);
        }
    }

    private static JsonObject? Parse(string path)
    {
        try { return JsonNode.Parse(Checkpoints.ModelFile.ReadAllText(path)) as JsonObject; }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON (line {e.LineNumber + 1}): {e.Message}", e); }
    }
}
