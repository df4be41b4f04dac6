using System.Text.Json.Nodes;

namespace OnlineAlign.Tests.Infrastructure;

/// <summary>
/// A Hugging Face tokenizer.json for byte-level BPE with GPT-2's byte table and no merges (every byte its own token,
/// ids 0-255) and the given special tokens at 256 onwards: a real tokenizer file that needs no download.
/// </summary>
internal static class ByteLevelTokenizerJson
{
    public static void Write(string folder, IReadOnlyList<string> specials)
    {
        var vocab = new JsonObject();
        foreach (var (b, c) in Gpt2ByteTable()) vocab[c.ToString()] = b;
        var added = new JsonArray();
        for (int i = 0; i < specials.Count; i++)
        {
            vocab[specials[i]] = 256 + i;
            added.Add(new JsonObject { ["id"] = 256 + i, ["content"] = specials[i], ["special"] = true });
        }
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), new JsonObject
        {
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray() }, ["added_tokens"] = added,
        }.ToJsonString());
    }

    /// <summary>
    /// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest map to 256 + n in order. Derived here
    /// from the definition, not taken from the product's ByteLevel, so the fixtures stay independent of the code they test.
    /// </summary>
    public static Dictionary<byte, char> Gpt2ByteTable()
    {
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToHashSet();
        var map = new Dictionary<byte, char>();
        int next = 0;
        for (int b = 0; b < 256; b++) map[(byte)b] = printable.Contains(b) ? (char)b : (char)(256 + next++);
        return map;
    }
}
