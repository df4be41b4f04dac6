using OnlineAlign.Modeling.Templates;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// The chat format of a folder whose template is run: the template is parsed and tried on a prompt when the folder
/// loads (so a template this interpreter cannot run, or one that refuses a plain user turn, is refused before a run
/// starts), and the turn end is read off the template itself.
/// </summary>
internal static class ChatTemplateFormat
{
    // An assistant reply the template will not rewrite (no whitespace to trim, no think tags), found again in the output.
    private const string ProbeReply = "OnlineAlignProbeReply";

    public static ChatFormat Create(string template, string source, string? bos, string? eos, int eosId, int bosId, List<int> stops, Func<string,
        int?> specialTokenId)
    {
        ChatTemplateRenderer renderer;
        try
        {
            renderer = ChatTemplateRenderer.Parse(template, source, bos, eos);
            renderer.Render([new ChatMessage("user", "Hi")], addGenerationPrompt: true);
        }
        catch (TemplateException e)
        {
            throw new NotSupportedException($"{source}: the chat template cannot be run: {e.Message}; " +
                "set model.chat_template to chatml, llama3 or plain to say how prompts are formatted", e);
        }
        string? family = ChatFormat.Recognise(template);
        int end = TurnEnd(renderer, specialTokenId)
            ?? (ChatFormat.TurnEndMarker(family) is { } marker ? specialTokenId(marker) : null)
            ?? (eosId >= 0 ? eosId : throw new NotSupportedException(
                $"{source}: cannot tell which token ends an assistant turn (the template emits no special token after the reply, and the " +
                    $"tokenizer has no eos)"));
        string? leadingBos = bos is not null && bosId >= 0 && specialTokenId(bos) == bosId ? bos : null;
        return new ChatFormat(family ?? "template", PromptTemplate.Plain, null, end, stops.Prepend(end).Distinct().ToList())
        {
            Renderer = renderer,
            LeadingBos = leadingBos,
        };
    }

    /// <summary>
    /// The special token the template writes right after an assistant reply (&lt;|im_end|&gt;, &lt;|eot_id|&gt;,
    /// &lt;end_of_turn&gt;, eos...), found by rendering a conversation that ends with one; null when there is none.
    /// </summary>
    private static int? TurnEnd(ChatTemplateRenderer renderer, Func<string, int?> specialTokenId)
    {
        string text;
        try { text = renderer.Render([new ChatMessage("user", "Hi"), new ChatMessage("assistant", ProbeReply)], addGenerationPrompt: false); }
        catch (TemplateException) { return null; } // a template that refuses this conversation: fall back to the markers
        int at = text.LastIndexOf(ProbeReply, StringComparison.Ordinal);
        if (at < 0) return null;
        string rest = text[(at + ProbeReply.Length)..].TrimStart(' ');
        for (int length = Math.Min(rest.Length, 64); length > 0; length--)
            if (specialTokenId(rest[..length]) is int id) return id;
        return null;
    }
}
