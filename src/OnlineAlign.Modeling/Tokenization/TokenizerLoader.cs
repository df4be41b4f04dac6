using System.Text.Json.Nodes;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>Finds the tokenizer a model folder describes: tokenizer.json (BPE, see HfBpeTokenizer) or our byte-level marker.</summary>
public static class TokenizerLoader
{
    /// <param name="chatTemplate">model.chat_template: auto (the folder's own template), plain, chatml or llama3</param>
    public static ITextTokenizer Load(string folder, string chatTemplate = "auto")
    {
        if (File.Exists(Path.Combine(folder, "tokenizer.json")))
        {
            var tokenizer = HfBpeTokenizer.Load(folder);
            return tokenizer.WithChat(ChatFormat.Resolve(chatTemplate, folder, tokenizer.EosId, tokenizer.SpecialTokenId, tokenizer.BosId));
        }
        string config = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(config) && Marker(config) == "bytes")
        {
            if (chatTemplate is not ("auto" or "plain"))
                throw new NotSupportedException($"model.chat_template '{chatTemplate}': the byte-level tokenizer of '{folder}' has no chat tokens " +
                    $"(use plain or auto)");
            return new ByteTokenizer();
        }
        throw new FileNotFoundException($"model folder '{folder}' has no tokenizer.json (BPE) and no byte-tokenizer marker");
    }

    private static string? Marker(string config)
    {
        try { return (JsonNode.Parse(Checkpoints.ModelFile.ReadAllText(config)) as JsonObject)?["onlinealign_tokenizer"]?.GetValue<string>(); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException)
        {
            throw new InvalidDataException($"{config}: not a valid tokenizer config: {e.Message}", e);
        }
    }
}
