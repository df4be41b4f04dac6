using System.Text.Json.Nodes;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>Finds the tokenizer a model folder describes: tokenizer.json (BPE) or our byte-level marker.</summary>
public static class TokenizerLoader
{
    public static ITextTokenizer Load(string folder)
    {
        if (File.Exists(Path.Combine(folder, "tokenizer.json"))) return HfBpeTokenizer.Load(folder);
        string config = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(config) && JsonNode.Parse(File.ReadAllText(config))?["onlinealign_tokenizer"]?.GetValue<string>() == "bytes")
            return new ByteTokenizer();
        throw new FileNotFoundException($"model folder '{folder}' has no tokenizer.json (byte-level BPE) and no byte-tokenizer marker");
    }
}
