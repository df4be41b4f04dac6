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
    /// <summary>The files that describe this tokenizer in a Hugging Face folder (name, content).</summary>
    IEnumerable<(string Name, string Content)> HfFiles();
}
