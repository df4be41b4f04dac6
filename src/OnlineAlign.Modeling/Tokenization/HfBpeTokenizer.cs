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
        string json = Checkpoints.ModelFile.ReadAllText(path);
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        string? configJson = File.Exists(configPath) ? Checkpoints.ModelFile.ReadAllText(configPath) : null;
        return Parse(json, configJson, path);
    }

    /// <summary>
    /// The tokenizer a tokenizer.json describes. A tokenizer.json is hostile input: ids are checked (non-negative, below
    /// the largest vocabulary a config may declare), counts are bounded, a field of the wrong type is refused naming the
    /// file, and the pre-tokenizer's regular expression runs with a timeout (a catastrophic one fails, never hangs).
    /// </summary>
    public static HfBpeTokenizer Parse(string json, string? configJson = null, string source = "tokenizer.json")
    {
        try { return ParseChecked(json, configJson, source); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException or ArgumentException)
        {
            throw new InvalidDataException($"{source}: {e.Message}", e);
        }
    }

    private static HfBpeTokenizer ParseChecked(string json, string? configJson, string source)
    {
        JsonObject root;
        try { root = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException($"{source}: top level is not an object"); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON (line {e.LineNumber + 1}): {e.Message}", e); }

        var model = root["model"] as JsonObject ?? throw new InvalidDataException($"{source}: no 'model' object");
        string type = model["type"]?.GetValue<string>() ?? "BPE";
        if (type != "BPE") throw new NotSupportedException($"{source}: model.type '{type}' is not supported (only byte-level BPE)");
        var vocab = model["vocab"] as JsonObject ?? throw new InvalidDataException($"{source}: model.vocab is missing");
        if (vocab.Count > MaxEntries) throw new InvalidDataException($"{source}: model.vocab has {vocab.Count} entries; the limit is {MaxEntries}");
        if (model["merges"] is JsonArray { Count: > MaxEntries } tooMany) throw new InvalidDataException($"{source}: model.merges has {tooMany.Count} entries; the limit is {MaxEntries}");
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
            special[content] = TokenId(token!["id"], $"added_tokens[{i}].id", source);
        }

        var vocabulary = vocab.Select(kv => (kv.Key, TokenId(kv.Value, $"model.vocab '{Short(kv.Key)}'", source))).ToList();
        var options = new BpeOptions(vocabulary.Where(v => !special.ContainsKey(v.Key)).Select(v => KeyValuePair.Create(v.Key, v.Item2)))
        {
            Merges = merges,
            ByteLevel = true,
            SpecialTokens = special,
            PreTokenizer = new RegexPreTokenizer(PreTokenizerRegex(root, source), special),
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
        return new HfBpeTokenizer(bpe, json, configJson, vocabSize, Id("pad_token", eos), Id("bos_token", -1), eos, special) { _source = source };
    }

    /// <summary>Vocabulary and merge entries a tokenizer.json may hold (the largest real vocabularies are ~256k).</summary>
    public const int MaxEntries = Modeling.ModelConfigCheck.MaxVocabSize;

    /// <summary>How long one match of the pre-tokenizer's pattern may take: real patterns take microseconds.</summary>
    public static readonly TimeSpan RegexTimeout = TimeSpan.FromSeconds(1);

    private static int TokenId(JsonNode? node, string what, string source)
    {
        if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.Number || !TryInt(value, out int id))
            throw new InvalidDataException($"{source}: {what} must be an integer token id, got {Short(node?.ToJsonString() ?? "nothing")}");
        if (id < 0 || id >= MaxEntries) throw new InvalidDataException($"{source}: {what} id {id} is not between 0 and {MaxEntries - 1}");
        return id;
    }

    private static bool TryInt(JsonValue value, out int id)
    {
        id = 0;
        try { id = value.GetValue<int>(); return true; }
        catch (Exception e) when (e is InvalidOperationException or FormatException) { return false; }
    }

    private static string Short(string s) => s.Length > 80 ? s[..80] + "..." : s;

    /// <summary>
    /// The split pattern the tokenizer.json declares (Qwen2 splits digits one by one, Llama-3 in groups of
    /// three, GPT-2 not at all), or GPT-2's when it declares none.
    /// </summary>
    private static Regex PreTokenizerRegex(JsonObject root, string source)
    {
        static IEnumerable<string> Patterns(JsonNode? node) => node switch
        {
            JsonObject o when o["pattern"]?["Regex"] is JsonValue v => [v.GetValue<string>()],
            JsonObject o => o.SelectMany(kv => Patterns(kv.Value)),
            JsonArray a => a.SelectMany(Patterns),
            _ => [],
        };
        string pattern = Patterns(root["pre_tokenizer"]).FirstOrDefault() ?? Gpt2Pattern;
        Regex regex;
        try { regex = new Regex(pattern, RegexOptions.Compiled, RegexTimeout); }
        catch (ArgumentException e) { throw new NotSupportedException($"{source}: pre_tokenizer pattern is not a supported regular expression: {e.Message}"); }
        // Texts on which catastrophic patterns ((a+)+$ and the like) backtrack without end: one is refused here, at load.
        foreach (string probe in Probes)
        {
            try { foreach (var _ in regex.EnumerateMatches(probe)) { } }
            catch (RegexMatchTimeoutException)
            {
                throw new InvalidDataException($"{source}: pre_tokenizer pattern took longer than {RegexTimeout.TotalSeconds:0.#} s on a {probe.Length}-character test text (catastrophic backtracking)");
            }
        }
        return regex;
    }

    private static readonly string[] Probes =
        [new string('a', 4096) + "!", new string(' ', 4096) + "!", new string('1', 4096) + "!", string.Concat(Enumerable.Repeat("a ", 2048)) + "\u0000", string.Concat(Enumerable.Repeat("ab", 2048)) + "!"];

    private string _source = "tokenizer.json";

    /// <summary>Ids of a text; a pattern that times out on it is an InvalidDataException naming the tokenizer file.</summary>
    public int[] Encode(string text)
    {
        try { return _bpe.EncodeToIds(text).ToArray(); }
        catch (RegexMatchTimeoutException)
        {
            throw new InvalidDataException($"{_source}: pre_tokenizer pattern took longer than {RegexTimeout.TotalSeconds:0.#} s on a {text.Length}-character text (catastrophic backtracking)");
        }
    }

    public string Decode(IEnumerable<int> ids) => _bpe.Decode(ids) ?? "";

    public IEnumerable<(string Name, string Content)> HfFiles()
    {
        yield return ("tokenizer.json", _json);
        if (_configJson is not null) yield return ("tokenizer_config.json", _configJson);
    }
}
