using System.Text.Json.Nodes;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Tests.Modeling;

/// <summary>tokenizer.json parts one at a time, on small hand-made files: what each does, and refusal of the rest by name.</summary>
public class TokenizerPartsTests
{
    /// <summary>A word-level file: vocab entries are whole pieces (ignore_merges), so ids show how the text was split.</summary>
    private static JsonObject WordFile(params string[] vocab)
    {
        var entries = new JsonObject();
        for (int i = 0; i < vocab.Length; i++) entries[vocab[i]] = i;
        return new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null, ["added_tokens"] = new JsonArray(),
            ["normalizer"] = null, ["pre_tokenizer"] = null, ["post_processor"] = null, ["decoder"] = null,
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = entries, ["merges"] = new JsonArray(), ["ignore_merges"] = true },
        };
    }

    private static JsonObject Split(string behavior, string? literal = null, string? regex = null) => new()
    {
        ["type"] = "Split",
        ["pattern"] = literal is not null ? new JsonObject { ["String"] = literal } : new JsonObject { ["Regex"] = regex },
        ["behavior"] = behavior, ["invert"] = false,
    };

    [Theory]
    [InlineData("Isolated", new[] { 0, 1, 2 })]          // "a", " ", "b"
    [InlineData("Removed", new[] { 0, 2 })]              // "a", "b"
    [InlineData("MergedWithPrevious", new[] { 3, 2 })]   // "a ", "b"
    [InlineData("MergedWithNext", new[] { 0, 4 })]       // "a", " b"
    public void SplitBehavioursPlaceTheMatchAsRustTokenizersDo(string behavior, int[] expected)
    {
        var file = WordFile("a", " ", "b", "a ", " b");
        file["pre_tokenizer"] = Split(behavior, literal: " ");
        Assert.Equal(expected, HfBpeTokenizer.Parse(file.ToJsonString()).Encode("a b"));
    }

    [Fact]
    public void SplitPatternsSeeCodePointsOutsideTheBmp()
    {
        // 𝒜 (U+1D49C, a letter) and 😀 (U+1F600, a symbol) are one code point each: \p{L}+ takes the letters with it,
        // and {1} counts the emoji once, as Rust's regex and JavaScript's u flag do (.NET alone would see two surrogates).
        var file = WordFile("x𝒜y", "😀", "!", "😀!");
        file["pre_tokenizer"] = Split("Isolated", regex: @"\p{L}+|[\p{S}]{1}");
        var tokenizer = HfBpeTokenizer.Parse(file.ToJsonString());
        Assert.Equal([0, 1, 2], tokenizer.Encode("x𝒜y😀!"));
    }

    [Fact]
    public void SentencePieceStyleBpeFallsBackToBytesAndDecodesThem()
    {
        // Llama-2's layout: "▁" for spaces (Prepend and Replace), BPE merges, <0xNN> byte tokens for what the vocab lacks.
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["▁"] = 2, ["h"] = 3, ["i"] = 4, ["▁h"] = 5, ["▁hi"] = 6 };
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = 7 + b;
        var file = new JsonObject
        {
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 1, ["content"] = "<s>", ["special"] = true }),
            ["normalizer"] = JsonNode.Parse("""{"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}"""),
            ["pre_tokenizer"] = null,
            ["post_processor"] = JsonNode.Parse("""{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}"""),
            ["decoder"] = JsonNode.Parse("""{"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}"""),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray("▁ h", "▁h i"),
                ["unk_token"] = "<unk>", ["byte_fallback"] = true, ["fuse_unk"] = true,
            },
        };
        var tokenizer = HfBpeTokenizer.Parse(file.ToJsonString());
        int[] ids = tokenizer.Encode("hi é");
        Assert.Equal([6, 2, 7 + 0xC3, 7 + 0xA9], ids); // "▁hi", "▁", then é as its two UTF-8 bytes
        Assert.Equal([1, .. ids], tokenizer.Encode("hi é", addSpecialTokens: true));
        Assert.Equal("hi é", tokenizer.Decode(ids));
    }

    [Theory]
    [InlineData("normalizer", """{"type": "Lowercase"}""", "normalizer 'Lowercase' is not supported")]
    [InlineData("normalizer", """{"type": "Sequence", "normalizers": [{"type": "NFKC"}]}""", "normalizer.normalizers[0] 'NFKC' is not supported")]
    [InlineData("pre_tokenizer", """{"type": "Metaspace", "replacement": "▁"}""", "pre_tokenizer 'Metaspace' is not supported")]
    [InlineData("pre_tokenizer", """{"type": "Split", "pattern": {"String": " "}, "behavior": "Contiguous", "invert": false}""", "'Split' behavior 'Contiguous' is not supported")]
    [InlineData("pre_tokenizer", """{"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated", "invert": true}""", "'Split' with invert true is not supported")]
    [InlineData("post_processor", """{"type": "BertProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101]}""", "post_processor 'BertProcessing' is not supported")]
    [InlineData("decoder", """{"type": "WordPiece", "prefix": "##"}""", "decoder 'WordPiece' is not supported")]
    public void UnsupportedPartsAreRefusedByName(string part, string json, string message)
    {
        var file = WordFile("a");
        file[part] = JsonNode.Parse(json);
        var error = Assert.Throws<NotSupportedException>(() => HfBpeTokenizer.Parse(file.ToJsonString(), source: "m/tokenizer.json"));
        Assert.StartsWith("m/tokenizer.json: ", error.Message);
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void UnsupportedModelOptionsAndAddedTokenFlagsAreRefusedByName()
    {
        var dropout = WordFile("a");
        dropout["model"]!["dropout"] = 0.1;
        Assert.Contains("model.dropout 0.1 is not supported", Assert.Throws<NotSupportedException>(() => HfBpeTokenizer.Parse(dropout.ToJsonString())).Message);
        var suffix = WordFile("a");
        suffix["model"]!["end_of_word_suffix"] = "_w";
        Assert.Contains("model.end_of_word_suffix \"_w\" is not supported", Assert.Throws<NotSupportedException>(() => HfBpeTokenizer.Parse(suffix.ToJsonString())).Message);
        var singleWord = WordFile("a");
        singleWord["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 0, ["content"] = "a", ["single_word"] = true });
        Assert.Contains("added_tokens[0] 'a': single_word true is not supported", Assert.Throws<NotSupportedException>(() => HfBpeTokenizer.Parse(singleWord.ToJsonString())).Message);
        var normalized = WordFile("a");
        normalized["normalizer"] = JsonNode.Parse("""{"type": "NFC"}""");
        normalized["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 0, ["content"] = "a", ["normalized"] = true });
        Assert.Contains("normalized true", Assert.Throws<NotSupportedException>(() => HfBpeTokenizer.Parse(normalized.ToJsonString())).Message);
    }

    [Fact]
    public void AddedTokensSplitLongestFirstAndStripAsFlagged()
    {
        var file = WordFile("x", "<a>", "<ab>", " ", "y");
        file["added_tokens"] = new JsonArray(
            new JsonObject { ["id"] = 1, ["content"] = "<a>", ["special"] = true },
            new JsonObject { ["id"] = 2, ["content"] = "<ab>", ["special"] = true, ["lstrip"] = true, ["rstrip"] = true });
        file["pre_tokenizer"] = Split("Isolated", literal: " ");
        var tokenizer = HfBpeTokenizer.Parse(file.ToJsonString());
        // " x " before <ab> loses its trailing space, " y" after it its leading one; the space after <a> stays.
        Assert.Equal([0, 1, 3, 0, 2, 4], tokenizer.Encode("x<a> x <ab> y"));
        Assert.Equal(2, tokenizer.SpecialTokenId("<ab>"));
    }
}
