using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// A Hugging Face tokenizer.json with a byte-level BPE model (GPT-2, Qwen2, Llama-3 style), built on
/// Microsoft.ML.Tokenizers (which has no tokenizer.json loader: vocab, merges and added tokens are read
/// here). Special tokens are split out before BPE, so "&lt;|im_end|&gt;" stays one token.
/// </summary>
public sealed class HfBpeTokenizer : ITextTokenizer
{
    // GPT-2's pre-tokenizer pattern (Qwen2 and Llama-3 use close variants; see the note in README).
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly BpeTokenizer _bpe;
    private readonly string _json;
    private readonly string? _configJson;
    public int VocabSize { get; }
    public int PadId { get; }
    public int BosId { get; }
    public int EosId { get; }
    public ChatFormat Chat { get; private set; }
    private readonly Dictionary<string, int> _special;

    private HfBpeTokenizer(BpeTokenizer bpe, string json, string? configJson, int vocabSize, int pad, int bos, int eos, Dictionary<string, int> special)
    {
        _bpe = bpe; _json = json; _configJson = configJson;
        VocabSize = vocabSize; PadId = pad; BosId = bos; EosId = eos;
        _special = special;
        Chat = ChatFormat.Plain(eos);
    }

    /// <summary>The id of a special (added) token, or null.</summary>
    public int? SpecialTokenId(string content) => _special.TryGetValue(content, out int id) ? id : null;

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
        string json = File.ReadAllText(path);
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        string? configJson = File.Exists(configPath) ? File.ReadAllText(configPath) : null;
        return Parse(json, configJson, path);
    }

    public static HfBpeTokenizer Parse(string json, string? configJson = null, string source = "tokenizer.json")
    {
        JsonObject root;
        try { root = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException($"{source}: top level is not an object"); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON (line {e.LineNumber + 1}): {e.Message}", e); }

        var model = root["model"] as JsonObject ?? throw new InvalidDataException($"{source}: no 'model' object");
        string type = model["type"]?.GetValue<string>() ?? "BPE";
        if (type != "BPE") throw new NotSupportedException($"{source}: model.type '{type}' is not supported (only byte-level BPE)");
        var vocab = model["vocab"] as JsonObject ?? throw new InvalidDataException($"{source}: model.vocab is missing");
        var merges = (model["merges"] as JsonArray ?? []).Select((m, i) => m switch
        {
            JsonArray pair when pair.Count == 2 => $"{pair[0]!.GetValue<string>()} {pair[1]!.GetValue<string>()}",
            JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
            _ => throw new InvalidDataException($"{source}: model.merges[{i}] is neither \"a b\" nor [\"a\", \"b\"]"),
        }).ToList();

        var special = new Dictionary<string, int>();
        foreach (var (token, i) in (root["added_tokens"] as JsonArray ?? []).Select((t, i) => (t, i)))
        {
            string content = token?["content"]?.GetValue<string>() ?? throw new InvalidDataException($"{source}: added_tokens[{i}] has no content");
            special[content] = token!["id"]?.GetValue<int>() ?? throw new InvalidDataException($"{source}: added_tokens[{i}] has no id");
        }

        var vocabulary = vocab.Select(kv => (kv.Key, kv.Value!.GetValue<int>())).ToList();
        var options = new BpeOptions(vocabulary.Where(v => !special.ContainsKey(v.Key)).Select(v => KeyValuePair.Create(v.Key, v.Item2)))
        {
            Merges = merges,
            ByteLevel = true,
            SpecialTokens = special,
            PreTokenizer = new RegexPreTokenizer(new Regex(PreTokenizerPattern(root, source), RegexOptions.Compiled), special),
        };
        var bpe = BpeTokenizer.Create(options);

        int vocabSize = Math.Max(vocabulary.Count == 0 ? 0 : vocabulary.Max(v => v.Item2), special.Count == 0 ? 0 : special.Values.Max()) + 1;
        var config = configJson is null ? null : JsonNode.Parse(configJson) as JsonObject;
        int Id(string field, int fallback)
        {
            var node = config?[field];
            string? name = node switch { JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(), JsonObject o => o["content"]?.GetValue<string>(), _ => null };
            return name is not null && special.TryGetValue(name, out int id) ? id : fallback;
        }
        int eos = Id("eos_token", special.TryGetValue("<|endoftext|>", out var endOfText) ? endOfText : -1);
        return new HfBpeTokenizer(bpe, json, configJson, vocabSize, Id("pad_token", eos), Id("bos_token", -1), eos, special);
    }

    /// <summary>
    /// The split pattern the tokenizer.json declares (Qwen2 splits digits one by one, Llama-3 in groups of
    /// three, GPT-2 not at all), or GPT-2's when it declares none.
    /// </summary>
    private static string PreTokenizerPattern(JsonObject root, string source)
    {
        static IEnumerable<string> Patterns(JsonNode? node) => node switch
        {
            JsonObject o when o["pattern"]?["Regex"] is JsonValue v => [v.GetValue<string>()],
            JsonObject o => o.SelectMany(kv => Patterns(kv.Value)),
            JsonArray a => a.SelectMany(Patterns),
            _ => [],
        };
        string? pattern = Patterns(root["pre_tokenizer"]).FirstOrDefault();
        if (pattern is null) return Gpt2Pattern;
        try { _ = new Regex(pattern); return pattern; }
        catch (ArgumentException e) { throw new NotSupportedException($"{source}: pre_tokenizer pattern is not a supported regular expression: {e.Message}"); }
    }

    public int[] Encode(string text) => _bpe.EncodeToIds(text).ToArray();

    public string Decode(IEnumerable<int> ids) => _bpe.Decode(ids) ?? "";

    public IEnumerable<(string Name, string Content)> HfFiles()
    {
        yield return ("tokenizer.json", _json);
        if (_configJson is not null) yield return ("tokenizer_config.json", _configJson);
    }
}
