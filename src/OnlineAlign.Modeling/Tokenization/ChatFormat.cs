using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// How a prompt is laid out for a model and which token ids end its response: its chat template's family, the
/// default system prompt the template inserts, the token that closes an assistant turn, and every id that stops
/// generation. Templates are Jinja programs and no Jinja engine is available to .NET here, so the families the
/// project supports are recognised by their markers, and anything else is refused rather than guessed.
/// </summary>
public sealed partial record ChatFormat(string Name, PromptTemplate Template, string? DefaultSystem, int EndOfResponse, IReadOnlyList<int> StopIds)
{
    public static readonly string[] Settings = ["auto", "plain", "chatml", "llama3"];

    /// <summary>Raw text, ending with the tokenizer's eos (built-in models and base models without a template).</summary>
    public static ChatFormat Plain(int eosId) => new("plain", PromptTemplate.Plain, null, eosId, [eosId]);

    public string Format(string prompt) => Template.Format(prompt, DefaultSystem);

    /// <summary>
    /// The format for a model folder: <paramref name="setting"/> names one, or "auto" reads the folder's chat template
    /// (tokenizer_config.json's chat_template or chat_template.jinja). Stop ids are the turn's end token, the
    /// tokenizer's eos and generation_config.json's eos_token_id(s).
    /// </summary>
    /// <param name="specialTokenId">the id of a special token of the tokenizer, or null if it has none by that text</param>
    public static ChatFormat Resolve(string setting, string folder, int eosId, Func<string, int?> specialTokenId)
    {
        var (template, source) = ReadTemplate(folder);
        string name = setting switch
        {
            "auto" => template is null ? "plain" : Recognise(template) ?? throw new NotSupportedException(
                $"{source}: the chat template is not one OnlineAlign recognises (ChatML as in Qwen2, Llama-3); " +
                "set model.chat_template to chatml, llama3 or plain to say how prompts are formatted"),
            "plain" or "chatml" or "llama3" => setting,
            _ => throw new ArgumentException($"model.chat_template '{setting}' is not one of {string.Join(", ", Settings)}"),
        };
        var stops = new List<int>();
        if (eosId >= 0) stops.Add(eosId);
        stops.AddRange(GenerationEosIds(folder));
        if (name == "plain") return new ChatFormat(name, PromptTemplate.Plain, null, eosId, stops.Distinct().ToList());

        var format = PromptTemplate.ByName(name);
        string turnEnd = name == "chatml" ? "<|im_end|>" : "<|eot_id|>";
        foreach (var marker in new[] { turnEnd, name == "chatml" ? "<|im_start|>" : "<|start_header_id|>" })
            if (specialTokenId(marker) is null)
                throw new NotSupportedException($"model.chat_template '{name}': the tokenizer in '{folder}' has no special token {marker}");
        int end = specialTokenId(turnEnd)!.Value;
        string? system = name == "chatml" && template is not null ? DefaultChatMLSystem(template) : null;
        return new ChatFormat(name, format, system, end, stops.Prepend(end).Distinct().ToList());
    }

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

    private static (string? Template, string Source) ReadTemplate(string folder)
    {
        string jinja = Path.Combine(folder, "chat_template.jinja");
        if (File.Exists(jinja)) return (Checkpoints.ModelFile.ReadAllText(jinja), jinja);
        string config = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(config)) return (null, config);
        var node = Parse(config)?["chat_template"];
        return (node switch
        {
            null => null,
            JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
            // Several named templates: the default one is the chat format.
            JsonArray named => named.OfType<JsonObject>().FirstOrDefault(t => t["name"]?.GetValue<string>() == "default")?["template"]?.GetValue<string>()
                ?? throw new InvalidDataException($"{config}: chat_template lists templates but none named 'default'"),
            _ => throw new InvalidDataException($"{config}: chat_template must be a string or a list of named templates"),
        }, config);
    }

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
