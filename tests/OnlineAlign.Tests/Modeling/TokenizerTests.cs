using System.Text.Json.Nodes;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Modeling;

public class TokenizerTests
{
    [Fact]
    public void ByteTokenizerRoundTripsUnicodeAndKeepsSpecialIdsOutOfText()
    {
        var tokenizer = new ByteTokenizer();
        string text = "sort 3 1 2 -> héllo ✓";
        var ids = tokenizer.Encode(text);
        Assert.All(ids, id => Assert.InRange(id, ByteTokenizer.Offset, tokenizer.VocabSize - 1));
        Assert.Equal(text, tokenizer.Decode(ids.Append(tokenizer.EosId)));
    }

    private static string TinyTokenizerJson()
    {
        var vocab = new JsonObject();
        foreach (var (b, c) in ByteLevelTokenizerJson.Gpt2ByteTable()) vocab[c.ToString()] = b;
        vocab["he"] = 256; vocab["ll"] = 257; vocab["Ġw"] = 258; vocab["<|endoftext|>"] = 259; vocab["<|im_end|>"] = 260;
        return new JsonObject
        {
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray("h e", new JsonArray("l", "l"), "Ġ w") },
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = 259, ["content"] = "<|endoftext|>", ["special"] = true },
                new JsonObject { ["id"] = 260, ["content"] = "<|im_end|>", ["special"] = true }),
        }.ToJsonString();
    }

    [Fact]
    public void HfByteLevelBpeAppliesMergesAndKeepsSpecialTokensWhole()
    {
        var tokenizer = HfBpeTokenizer.Parse(TinyTokenizerJson(), """{"eos_token": "<|im_end|>"}""");
        var ids = tokenizer.Encode("hello world<|im_end|>");
        Assert.Equal([256, 257, 'o', 258, 'o', 'r', 'l', 'd', 260], ids);
        Assert.Equal("hello world<|im_end|>", tokenizer.Decode(ids));
        Assert.Equal(260, tokenizer.EosId);
        Assert.Equal(261, tokenizer.VocabSize);
        string unicode = "héllo ✓ 42";
        Assert.Equal(unicode, tokenizer.Decode(tokenizer.Encode(unicode)));
    }

    [Fact]
    public void DeclaredPreTokenizerPatternIsUsed()
    {
        // Qwen2-style: digits are split one by one, where GPT-2's pattern keeps "42" together before BPE.
        var json = (JsonObject)JsonNode.Parse(TinyTokenizerJson())!;
        ((JsonObject)json["model"]!)["vocab"]!["42"] = 261;
        ((JsonObject)json["model"]!)["merges"]!.AsArray().Add("4 2");
        string gpt2 = json.ToJsonString();
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(new JsonObject
            {
                ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = @"\p{N}| ?\p{L}+|\s+" }, ["behavior"] = "Isolated",
            }, new JsonObject { ["type"] = "ByteLevel" }),
        };
        Assert.Equal([261], HfBpeTokenizer.Parse(gpt2).Encode("42"));
        Assert.Equal(['4', '2'], HfBpeTokenizer.Parse(json.ToJsonString()).Encode("42"));
    }

    [Fact]
    public void MalformedTokenizerJsonNamesTheProblem()
    {
        var error = Assert.Throws<InvalidDataException>(() => HfBpeTokenizer.Parse("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [3]}}""", source: "x/tokenizer.json"));
        Assert.Contains("x/tokenizer.json: model.merges[0]", error.Message);
        Assert.Contains("model.type 'Unigram'", Assert.Throws<NotSupportedException>(() => HfBpeTokenizer.Parse("""{"model": {"type": "Unigram"}}""")).Message);
        Assert.Contains("line", Assert.Throws<InvalidDataException>(() => HfBpeTokenizer.Parse("{\n\"model\": ")).Message);
    }

    [Fact]
    public void ChatMlTemplateEndsWithTheAssistantMarker()
    {
        Assert.Equal("<|im_start|>system\nBe brief<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            PromptTemplate.ChatML.Format("Hi", "Be brief"));
        Assert.Equal("sort 3 1 2 =", PromptTemplate.Plain.Format("sort 3 1 2 ="));
    }
}
