using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using static OnlineAlign.Modeling.Tokenization.TokenizerJsonParts;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// A Hugging Face tokenizer.json with a BPE model, byte for byte as transformers.js (and Rust's tokenizers) encode and
/// decode it: added tokens split out first, then per piece the normalizer, the pre-tokenizer, BPE (byte-level as in
/// GPT-2/Llama-3/Qwen, or SentencePiece-style with byte fallback as in Llama-2/Gemma), and on request the
/// post-processor's special tokens; decoding runs the declared decoder. The parts real model files use are
/// implemented (Normalizers, PreTokenizers, BpeModel, PostProcessor, Decoders); any other part is refused by name
/// when the file loads. A file with no normalizer, pre_tokenizer or decoder key at all (hand-written, never saved by
/// tokenizers, which writes them as null) is read as GPT-2 byte-level BPE, as this project always read such files.
/// </summary>
public sealed class HfBpeTokenizer : ITextTokenizer
{
    private readonly string _json;
    private readonly string? _configJson;
    private readonly string _source;
    private readonly AddedTokens _added;
    private readonly Normalizer? _normalizer;
    private readonly PreTokenizer? _preTokenizer;
    private readonly BpeModel _model;
    private readonly PostProcessor? _postProcessor;
    private readonly Decoder? _decoder;
    private readonly string?[] _tokens; // id to token string (vocabulary and added tokens)
    private readonly string? _unkToken;
    private readonly bool _cleanUpSpaces;

    public int VocabSize { get; }
    public int PadId { get; }
    public int BosId { get; }
    public int EosId { get; }
    public ChatFormat Chat { get; private set; }

    private HfBpeTokenizer(string json, string? configJson, string source, Parts parts, int pad, int bos, int eos)
    {
        _json = json; _configJson = configJson; _source = source;
        (_added, _normalizer, _preTokenizer, _model, _postProcessor, _decoder, _tokens, _unkToken, _cleanUpSpaces) =
            (parts.Added, parts.Normalizer, parts.PreTokenizer, parts.Model, parts.PostProcessor, parts.Decoder, parts.Tokens, parts.UnkToken,
                parts.CleanUpSpaces);
        VocabSize = _tokens.Length;
        PadId = pad; BosId = bos; EosId = eos;
        Chat = ChatFormat.Plain(eos);
    }

    private sealed record Parts(AddedTokens Added, Normalizer? Normalizer, PreTokenizer? PreTokenizer, BpeModel Model, PostProcessor? PostProcessor,
        Decoder? Decoder, string?[] Tokens, string? UnkToken, bool CleanUpSpaces);

    /// <summary>The id of an added token (special or not), or null.</summary>
    public int? SpecialTokenId(string content) => _added.ByContent.TryGetValue(content, out var token) ? token.Id : null;

    /// <summary>This tokenizer with the chat format of the folder it came from (see <see cref="ChatFormat.Resolve"/>).</summary>
    public HfBpeTokenizer WithChat(ChatFormat chat)
    {
        Chat = chat;
        return this;
    }

    /// <summary>Loads tokenizer.json (and tokenizer_config.json for bos/eos/pad names) from a folder.</summary>
    public static HfBpeTokenizer Load(string folder)
    {
        string path = Path.Combine(folder, "tokenizer.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"'{folder}' has no tokenizer.json", path);
        string json = Checkpoints.ModelFile.ReadAllText(path);
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        string? configJson = File.Exists(configPath) ? Checkpoints.ModelFile.ReadAllText(configPath) : null;
        return Parse(json, configJson, path);
    }

    /// <summary>
    /// The tokenizer a tokenizer.json describes. A tokenizer.json is hostile input: ids are checked (non-negative, below
    /// the largest vocabulary a config may declare), counts are bounded, a field of the wrong type is refused naming the
    /// file, a part this project does not implement is refused naming it, and split patterns run with a timeout (a
    /// catastrophic one fails at load, never hangs).
    /// </summary>
    public static HfBpeTokenizer Parse(string json, string? configJson = null, string source = "tokenizer.json")
    {
        try { return ParseChecked(json, configJson, source); }
        catch (NotSupportedException e) when (!e.Message.StartsWith(source, StringComparison.Ordinal))
        {
            throw new NotSupportedException($"{source}: {e.Message}", e);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException or ArgumentException
                                  || (e is InvalidDataException && !e.Message.StartsWith(source, StringComparison.Ordinal)))
        {
            throw new InvalidDataException($"{source}: {e.Message}", e);
        }
    }

    /// <summary>Vocabulary and merge entries a tokenizer.json may hold (the largest real vocabularies are ~256k).</summary>
    public const int MaxEntries = Modeling.ModelConfigCheck.MaxVocabSize;

    /// <summary>How long one match of a split pattern may take: real patterns take microseconds.</summary>
    public static readonly TimeSpan RegexTimeout = CodePointRegex.Timeout;

    private static HfBpeTokenizer ParseChecked(string json, string? configJson, string source)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 }); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON (line {e.LineNumber + 1}): {e.Message}", e); }
        using var owned = document;
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{source}: top level is not an object");
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{source}: no 'model' object");

        var added = AddedTokensFrom(root, source);
        bool declared = root.TryGetProperty("normalizer", out _) || root.TryGetProperty("pre_tokenizer", out _) || root.TryGetProperty("decoder", out _);
        var normalizer = Normalizer.From(Part(root, "normalizer"), "normalizer");
        foreach (var token in added.normalized)
            if (normalizer is { ChangesText: true })
                throw new NotSupportedException($"added token '{Short(token)}' with normalized true (matched on normalized text) is not supported " +
                    $"with a normalizer");
        var preTokenizer = declared ? PreTokenizer.From(Part(root, "pre_tokenizer"), "pre_tokenizer")
            : PreTokenizer.From(JsonDocument.Parse("""{"type": "ByteLevel", "use_regex": true}""").RootElement, "pre_tokenizer");
        var postProcessor = PostProcessor.From(Part(root, "post_processor"), "post_processor");
        var addedContents = added.tokens.All.Select(t => t.Content).ToHashSet();
        var decoder = declared ? Decoder.From(Part(root, "decoder"), "decoder", addedContents)
            : Decoder.From(JsonDocument.Parse("""{"type": "ByteLevel"}""").RootElement, "decoder", addedContents);
        // truncation and padding are left out as transformers leaves them out: it sets both per call (off by default).

        var (bpe, vocab, unkToken) = ModelFrom(model, added.tokens, source);
        int maxId = Math.Max(vocab.Count == 0 ? -1 : vocab.Values.Max(), added.tokens.All.Count == 0 ? -1 : added.tokens.All.Max(t => t.Id));
        if (postProcessor is not null) maxId = Math.Max(maxId, postProcessor.AddedIds().DefaultIfEmpty(-1).Max());
        var tokens = new string?[maxId + 1];
        foreach (var (token, id) in vocab) tokens[id] = token;
        foreach (var token in added.tokens.All) tokens[token.Id] = token.Content;

        var config = ConfigFrom(configJson, source);
        int Id(string field, int fallback)
        {
            string? name = config.ValueKind == JsonValueKind.Object && config.TryGetProperty(field, out var node) ? node.ValueKind switch
            {
                JsonValueKind.String => node.GetString(),
                JsonValueKind.Object when node.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String => content.GetString(),
                _ => null,
            } : null;
            return name is not null && added.tokens.ByContent.TryGetValue(name, out var token) ? token.Id : fallback;
        }
        // transformers' default since 4.45 is no clean-up; the configs of real models say which they want.
        bool cleanUp = config.ValueKind == JsonValueKind.Object && Bool(config, "clean_up_tokenization_spaces", "tokenizer_config.json", false);
        int eos = Id("eos_token", added.tokens.ByContent.TryGetValue("<|endoftext|>", out var endOfText) ? endOfText.Id : -1);
        var parts = new Parts(added.tokens, normalizer, preTokenizer, bpe, postProcessor, decoder, tokens, unkToken, cleanUp);
        return new HfBpeTokenizer(json, configJson, source, parts, Id("pad_token", eos), Id("bos_token", -1), eos);
    }

    private static JsonElement Part(JsonElement root, string name) =>
        root.TryGetProperty(name, out var part) ? part : NullElement;

    private static readonly JsonElement NullElement = JsonDocument.Parse("null").RootElement;

    private static JsonElement ConfigFrom(string? configJson, string source)
    {
        if (configJson is null) return NullElement;
        try { return JsonDocument.Parse(configJson).RootElement; }
        catch (JsonException e) { throw new InvalidDataException($"{source}: its tokenizer_config.json is not valid JSON: {e.Message}", e); }
    }

    private static (AddedTokens tokens, List<string> normalized) AddedTokensFrom(JsonElement root, string source)
    {
        var list = new List<AddedTokens.Token>();
        var normalized = new List<string>();
        if (root.TryGetProperty("added_tokens", out var array) && array.ValueKind != JsonValueKind.Null)
        {
            if (array.ValueKind != JsonValueKind.Array) throw new InvalidDataException("added_tokens must be an array");
            if (array.GetArrayLength() > MaxEntries)
                throw new InvalidDataException($"added_tokens has {array.GetArrayLength()} entries; the limit is {MaxEntries}");
            int i = 0;
            foreach (var token in array.EnumerateArray())
            {
                string where = $"added_tokens[{i++}]";
                if (token.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where} is not an object");
                string content = String(token, "content", where) ?? throw new InvalidDataException($"{where} has no content");
                if (content.Length == 0) throw new InvalidDataException($"{where} has an empty content");
                int id = TokenId(token.TryGetProperty("id", out var idNode) ? idNode : NullElement, $"{where}.id");
                if (Bool(token, "single_word", where, false)) throw new NotSupportedException($"{where} '{Short(content)}': single_word true is not supported");
                if (Bool(token, "normalized", where, false)) normalized.Add(content);
                list.Add(new AddedTokens.Token(content, id, Bool(token, "special", where, false), Bool(token, "lstrip", where, false),
                    Bool(token, "rstrip", where, false)));
            }
        }
        return (new AddedTokens(list), normalized);
    }

    private static (BpeModel Model, Dictionary<string, int> Vocab, string? UnkToken) ModelFrom(JsonElement model, AddedTokens added, string source)
    {
        const string where = "model";
        string type = model.TryGetProperty("type", out var typeNode) ? typeNode.ValueKind == JsonValueKind.String ? typeNode.GetString()!
            : throw new InvalidDataException("model.type must be a string") : "BPE";
        if (type != "BPE") throw new NotSupportedException($"model.type '{type}' is not supported (only BPE)");
        RequireAbsentOr(model, "dropout", where, [null]);
        RequireAbsentOr(model, "continuing_subword_prefix", where, null, "");
        RequireAbsentOr(model, "end_of_word_suffix", where, null, "");
        if (!model.TryGetProperty("vocab", out var vocabNode) || vocabNode.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{source}: model.vocab is missing");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocabNode.EnumerateObject())
        {
            if (vocab.Count >= MaxEntries)
                throw new InvalidDataException($"{source}: model.vocab has more than {MaxEntries} entries; the limit is {MaxEntries}");
            vocab[entry.Name] = TokenId(entry.Value, $"model.vocab '{Short(entry.Name)}'");
        }
        var ranks = new Dictionary<(string, string), int>();
        if (model.TryGetProperty("merges", out var merges) && merges.ValueKind != JsonValueKind.Null)
        {
            if (merges.ValueKind != JsonValueKind.Array) throw new InvalidDataException("model.merges must be an array");
            if (merges.GetArrayLength() > MaxEntries)
                throw new InvalidDataException($"model.merges has {merges.GetArrayLength()} entries; the limit is {MaxEntries}");
            int rank = 0;
            foreach (var merge in merges.EnumerateArray())
            {
                (string, string) pair = merge.ValueKind switch
                {
                    JsonValueKind.Array when merge.GetArrayLength() == 2 && merge[0].ValueKind == JsonValueKind.String
                        && merge[1].ValueKind == JsonValueKind.String
                        => (merge[0].GetString()!, merge[1].GetString()!),
                    JsonValueKind.String when merge.GetString()!.Split(' ') is [var a, var b, ..] => (a, b),
                    _ => throw new InvalidDataException($"model.merges[{rank}] is neither \"a b\" nor [\"a\", \"b\"]"),
                };
                ranks.TryAdd(pair, rank++);
            }
        }
        string? unk = String(model, "unk_token", where);
        // Added tokens join the vocabulary (an added token's id wins), as both reference implementations look them up.
        var lookup = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        foreach (var token in added.All) lookup[token.Content] = token.Id;
        int? unkId = unk is not null && vocab.TryGetValue(unk, out int u) ? u : null;
        var bpe = new BpeModel(lookup, ranks, unkId, Bool(model, "byte_fallback", where, false), Bool(model, "ignore_merges", where, false),
            Bool(model, "fuse_unk", where, false));
        return (bpe, vocab, unk);
    }

    private static int TokenId(JsonElement node, string what)
    {
        if (node.ValueKind != JsonValueKind.Number || !node.TryGetInt32(out int id))
            throw new InvalidDataException($"{what} must be an integer token id, got " +
                $"{Short(node.ValueKind == JsonValueKind.Undefined ? "nothing" : node.GetRawText())}");
        if (id < 0 || id >= MaxEntries) throw new InvalidDataException($"{what} id {id} is not between 0 and {MaxEntries - 1}");
        return id;
    }

    private static string Short(string s) => s.Length > 80 ? s[..80] + "..." : s;

    /// <summary>Ids of a text without special tokens (transformers' add_special_tokens=False): what prompts rendered by a chat template, which hold
    /// their own BOS, need.</summary>
    public int[] Encode(string text) => Encode(text, addSpecialTokens: false);

    /// <summary>Ids of a text; with <paramref name="addSpecialTokens"/> the post-processor's (a BOS where the model adds one). A pattern that times
    /// out is an InvalidDataException naming the file.</summary>
    public int[] Encode(string text, bool addSpecialTokens)
    {
        try
        {
            var ids = new List<int>();
            var words = new List<string>();
            foreach (var (section, token) in _added.Split(WellFormed(text)))
            {
                if (token is not null) { ids.Add(token.Id); continue; }
                string normalized = _normalizer?.Normalize(section) ?? section;
                if (normalized.Length == 0) continue;
                words.Clear();
                if (_preTokenizer is null) words.Add(normalized);
                else _preTokenizer.Split(normalized, words);
                int sectionStart = ids.Count;
                foreach (string word in words) _model.Encode(word, ids, sectionStart);
            }
            return [.. addSpecialTokens && _postProcessor is not null ? _postProcessor.Apply(ids) : ids];
        }
        catch (RegexMatchTimeoutException)
        {
            throw new InvalidDataException($"{_source}: pre_tokenizer pattern took longer than {RegexTimeout.TotalSeconds:0.#} s on a " +
                $"{text.Length}-character text (catastrophic backtracking)");
        }
    }

    /// <summary>Lone surrogates (not text, and refused by normalization) as U+FFFD, as JavaScript's TextEncoder writes them.</summary>
    private static string WellFormed(string text)
    {
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF')) return text;
        var builder = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { builder.Append(c).Append(text[++i]); continue; }
            builder.Append(char.IsSurrogate(c) ? '\uFFFD' : c);
        }
        return builder.ToString();
    }

    /// <summary>The text of ids, special tokens kept, through the declared decoder (and the config's clean-up of spaces, as transformers decodes).</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var tokens = ids.Select(id => (id >= 0 && id < _tokens.Length ? _tokens[id] : null) ?? _unkToken ?? "").ToList();
        string text = _decoder is null ? string.Join(' ', tokens) : string.Concat(_decoder.Chain(tokens));
        return _cleanUpSpaces ? CleanUp(text) : text;
    }

    /// <summary>transformers' clean_up_tokenization: spaces before punctuation and English contractions removed.</summary>
    private static string CleanUp(string text) => text
        .Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal).Replace(" !", "!", StringComparison.Ordinal)
        .Replace(" ,", ",", StringComparison.Ordinal).Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
        .Replace(" 'm", "'m", StringComparison.Ordinal).Replace(" 's", "'s", StringComparison.Ordinal).Replace(" 've", "'ve", StringComparison.Ordinal)
        .Replace(" 're", "'re", StringComparison.Ordinal);

    public IEnumerable<(string Name, string Content)> HfFiles()
    {
        yield return ("tokenizer.json", _json);
        if (_configJson is not null) yield return ("tokenizer_config.json", _configJson);
    }
}
