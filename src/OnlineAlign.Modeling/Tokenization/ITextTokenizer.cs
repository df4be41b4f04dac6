namespace OnlineAlign.Modeling.Tokenization;

/// <summary>Text to token ids and back, with the special ids generation needs.</summary>
public interface ITextTokenizer
{
    int VocabSize { get; }
    int PadId { get; }
    int BosId { get; }
    int EosId { get; }
    int[] Encode(string text);
    string Decode(IEnumerable<int> ids);
    /// <summary>How prompts are laid out for the model and which ids end a response (plain text and eos unless a chat template says otherwise).</summary>
    ChatFormat Chat => ChatFormat.Plain(EosId);
    /// <summary>The files that describe this tokenizer in a Hugging Face folder (name, content).</summary>
    IEnumerable<(string Name, string Content)> HfFiles();
}
