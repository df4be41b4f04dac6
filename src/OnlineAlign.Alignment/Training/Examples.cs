using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Alignment.Training;

/// <summary>
/// Turns text into the token layout every phase shares: [bos] prompt-in-its-chat-template | response [end of turn]
/// (the end is eos for plain text, the template's turn end, e.g. &lt;|im_end|&gt;, for a chat model).
/// </summary>
public static class Examples
{
    public static int[] PromptIds(ITextTokenizer tokenizer, string prompt)
    {
        var ids = tokenizer.Encode(tokenizer.Chat.Format(prompt));
        return tokenizer.BosId >= 0 ? [tokenizer.BosId, .. ids] : ids;
    }

    public static int[] ResponseIds(ITextTokenizer tokenizer, string response) => [.. tokenizer.Encode(response), tokenizer.Chat.EndOfResponse];

    public static PromptResponse Pair(ITextTokenizer tokenizer, string prompt, string response) =>
        new(PromptIds(tokenizer, prompt), ResponseIds(tokenizer, response));
}
