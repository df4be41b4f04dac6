using OnlineAlign.Modeling.Templates;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>One turn of a conversation, as a chat template sees it: messages[i].role and messages[i].content.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// A model folder's own chat template, run as transformers' apply_chat_template runs it: the variables are messages,
/// add_generation_prompt and the tokenizer's special tokens (bos_token, eos_token) as text.
/// </summary>
public sealed class ChatTemplateRenderer
{
    private readonly JinjaTemplate _template;

    /// <summary>The file the template came from, for error messages.</summary>
    public string Source { get; }
    public string? BosToken { get; }
    public string? EosToken { get; }

    private ChatTemplateRenderer(JinjaTemplate template, string source, string? bos, string? eos)
    {
        _template = template; Source = source; BosToken = bos; EosToken = eos;
    }

    /// <exception cref="TemplateException">the template does not parse (the message names the line)</exception>
    public static ChatTemplateRenderer Parse(string template, string source, string? bosToken, string? eosToken) =>
        new(JinjaTemplate.Parse(template), source, bosToken, eosToken);

    /// <exception cref="TemplateException">the template failed or refused the conversation (raise_exception)</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var variables = new Dictionary<string, object?>
        {
            ["messages"] = messages.Select(m => new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList(),
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        if (BosToken is not null) variables["bos_token"] = BosToken;
        if (EosToken is not null) variables["eos_token"] = EosToken;
        return _template.Render(variables);
    }
}
