using OnlineAlign.Specs;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Execution.Files;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Security;

/// <summary>
/// Hostile model folders through the check a silo runs on a spec (RunSpecMapping.Problems with the silo's data roots and
/// device budget, in process): truncated and corrupt safetensors, absurd configs, broken or catastrophic tokenizers,
/// index files pointing outside, links, pipes. Every case must be refused with a problem that names the file (and no
/// case may reach the "could not be checked" catch-all: each is a known, named refusal). The unchanged folder passes.
/// </summary>
public class ModelFolderFuzzTests
{
    private static readonly ModelConfig Small = new()
    {
        ModelType = "llama", VocabSize = 320, HiddenSize = 16, IntermediateSize = 32, NumLayers = 2, NumHeads = 2, NumKeyValueHeads = 1,
        HeadDim = 8, RmsNormEps = 1e-5, MaxPositions = 256, PadTokenId = 0, BosTokenId = 1, EosTokenId = 2,
    };

    private readonly string _root = RepositoryPaths.NewTempFolder("model-fuzz-root");
    private readonly string _outside = RepositoryPaths.NewTempFolder("model-fuzz-outside");
    private readonly string _base;
    private readonly DataRoots _roots;
    private int _cases;

    public ModelFolderFuzzTests()
    {
        _roots = new DataRoots([_root]);
        _base = Path.Combine(_outside, "base");
        using var model = BuiltinModels.Create(Small, 3);
        HfCheckpoint.Save(model, _base, new ByteTokenizer().HfFiles());
        File.WriteAllText(Path.Combine(_outside, "hostname"), "not-a-model\n");
    }

    private static RunSpec Spec(string folder, string judge = "self_consistent", string? reward = null) => new()
    {
        Model = new() { HfFolder = folder }, Prompts = new() { Task = "sort", EvalPrompts = 4 }, Rounds = 1, PromptsPerRound = 16, SamplesPerPrompt = 2, SftSteps = 0, Device = "cpu",
        Sampling = new() { MaxNewTokens = 16 }, Judge = new() { Kind = judge, RewardModelFolder = reward }, Optimizer = new() { BatchSize = 4 },
    };

    private List<string> Check(RunSpec spec, SpecLimits? limits = null) =>
        RunSpecMapping.Problems(spec, limits ?? SpecLimits.Default, _roots, device: new MemoryPlanning.DeviceBudget("cpu", 8L << 30, Cpu: true));

    /// <summary>A fresh copy of the valid folder under the data root, changed by <paramref name="mutate"/>.</summary>
    private string Folder(Action<string> mutate)
    {
        string folder = Path.Combine(_root, $"case-{++_cases}");
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(_base)) File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        mutate(folder);
        return folder;
    }

    /// <summary>Runs each case; collects those accepted, refused without naming <c>File</c>, or refused by the catch-all.</summary>
    private List<string> Run(IEnumerable<(string Name, string File, Action<string> Mutate)> cases, SpecLimits? limits = null)
    {
        var failures = new List<string>();
        int count = 0;
        foreach (var (name, file, mutate) in cases)
        {
            count++;
            var problems = Check(Spec(Folder(mutate)), limits);
            string all = string.Join(" | ", problems);
            if (problems.Count == 0) failures.Add($"{name}: accepted");
            else if (!all.Contains(file, StringComparison.Ordinal)) failures.Add($"{name}: does not name {file}: {all}");
            else if (all.Contains("could not be checked", StringComparison.Ordinal)) failures.Add($"{name}: an unclassified failure: {all}");
        }
        Assert.True(count > 0);
        Counted += count;
        return failures;
    }

    /// <summary>Cases run by this instance (xunit makes one per test): each test asserts its own minimum.</summary>
    private int Counted { get; set; }

    [Fact]
    public void TheValidFolderPassesAndLoads()
    {
        string folder = Folder(_ => { });
        Assert.Empty(Check(Spec(folder)));
        using var model = HfCheckpoint.Load(folder, TorchSharp.torch.CPU);
        Assert.Equal(Small.NumLayers, model.Config.NumLayers);
        // Sharded: the same weights under an index naming a plain shard file.
        string sharded = Folder(Shard);
        Assert.Empty(Check(Spec(sharded)));
        using var shardedModel = HfCheckpoint.Load(sharded, TorchSharp.torch.CPU);
    }

    // ---- safetensors ----

    private static (ulong HeaderLength, JsonObject Header, byte[] Data) Parts(string file)
    {
        var bytes = File.ReadAllBytes(file);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = (JsonObject)JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, (int)length))!;
        return (length, header, bytes[(8 + (int)length)..]);
    }

    private static void Write(string file, string headerJson, byte[] data, ulong? declaredLength = null)
    {
        var json = Encoding.UTF8.GetBytes(headerJson);
        using var stream = File.Create(file);
        var length = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, declaredLength ?? (ulong)json.Length);
        stream.Write(length);
        stream.Write(json);
        stream.Write(data);
    }

    /// <summary>Rewrites the weights' header (the data unchanged).</summary>
    private static Action<string> Header(Action<JsonObject, long> change) => folder =>
    {
        string file = Path.Combine(folder, HfCheckpoint.WeightsFile);
        var (_, header, data) = Parts(file);
        change(header, data.Length);
        Write(file, header.ToJsonString(), data);
    };

    private static Action<string> RawHeader(Func<string, string> change) => folder =>
    {
        string file = Path.Combine(folder, HfCheckpoint.WeightsFile);
        var (_, header, data) = Parts(file);
        Write(file, change(header.ToJsonString()), data);
    };

    private const string Norm = "model.norm.weight", Embed = "model.embed_tokens.weight";

    [Fact]
    public void TruncatedAndCorruptSafetensorsAreRefusedNamingTheFile()
    {
        string weights = Path.Combine(_base, HfCheckpoint.WeightsFile);
        byte[] original = File.ReadAllBytes(weights);
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        var cases = new List<(string, string, Action<string>)>();
        // Truncated at many cut points: in the length, in the header, at its end, all through the data.
        var cuts = new SortedSet<int> { 0, 1, 4, 7, 8, 9, 12, 20, headerEnd / 2, headerEnd - 1, headerEnd, headerEnd + 1, original.Length - 1 };
        for (int i = 1; i <= 36; i++) cuts.Add(headerEnd + (int)((long)(original.Length - headerEnd) * i / 37));
        foreach (int cut in cuts)
            cases.Add(($"truncated at {cut} of {original.Length}", HfCheckpoint.WeightsFile, f => File.WriteAllBytes(Path.Combine(f, HfCheckpoint.WeightsFile), original[..cut])));
        // Flipped header bytes: a digit of a shape, an offset or a layer number; a JSON structure character; the length's high bits.
        var random = new Random(26);
        string headerText = Encoding.UTF8.GetString(original, 8, headerEnd - 8);
        var digits = Enumerable.Range(0, headerText.Length).Where(i => char.IsAsciiDigit(headerText[i])).ToList();
        var structure = Enumerable.Range(0, headerText.Length).Where(i => "{}[]:,\"".Contains(headerText[i])).ToList();
        foreach (int position in digits.OrderBy(_ => random.Next()).Take(30))
        {
            byte replacement = (byte)('0' + (headerText[position] - '0' + 1 + random.Next(9)) % 10);
            cases.Add(($"digit at {position} -> {(char)replacement}", HfCheckpoint.WeightsFile, f => Flip(f, 8 + position, replacement)));
        }
        foreach (int position in structure.OrderBy(_ => random.Next()).Take(12))
            cases.Add(($"'{headerText[position]}' at {position} -> '#'", HfCheckpoint.WeightsFile, f => Flip(f, 8 + position, (byte)'#')));
        for (int b = 0; b < 8; b++)
        {
            int at = b;
            cases.Add(($"length byte {b} high bit flipped", HfCheckpoint.WeightsFile, f => Flip(f, at, (byte)(original[at] ^ 0x80))));
        }
        foreach (string dtype in new[] { "F31", "f32", "Q4_K", "F8_E4M3", "" })
            cases.Add(($"dtype {dtype}", HfCheckpoint.WeightsFile, RawHeader(h => ReplaceFirst(h, "\"F32\"", $"\"{dtype}\""))));
        // Headers that parse but lie: every check of a tensor entry, and entries that do not match the config.
        cases.AddRange(new (string, string, Action<string>)[]
        {
            ("negative size", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm]!["shape"] = new JsonArray(-16))),
            ("shape overflowing 64 bits", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm]!["shape"] = new JsonArray(1L << 62, 4))),
            ("100000 x 100000", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm]!["shape"] = new JsonArray(100000, 100000))),
            ("same bytes, wrong shape", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm]!["shape"] = new JsonArray(8, 2))),
            ("rank 17", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm]!["shape"] = new JsonArray(Enumerable.Range(0, 17).Select(i => (JsonNode?)JsonValue.Create(i < 16 ? 1 : 16)).ToArray()))),
            ("negative offset", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm]!["data_offsets"] = new JsonArray(-64, 0))),
            ("offsets reversed", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm]!["data_offsets"] = Reversed(h[Norm]!["data_offsets"]!))),
            ("offsets past the end", HfCheckpoint.WeightsFile, Header((h, n) => h[Norm]!["data_offsets"] = new JsonArray(n, n + 64))),
            ("overlapping tensors", HfCheckpoint.WeightsFile, Header((h, _) =>
            {
                long begin = h[Embed]!["data_offsets"]![0]!.GetValue<long>();
                h[Norm]!["data_offsets"] = new JsonArray(begin, begin + 64);
            })),
            ("one offset", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm]!["data_offsets"] = new JsonArray(0))),
            ("offsets missing", HfCheckpoint.WeightsFile, Header((h, _) => ((JsonObject)h[Norm]!).Remove("data_offsets"))),
            ("offset as text", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm]!["data_offsets"] = new JsonArray("0", "64"))),
            ("dtype a number", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm]!["dtype"] = 32)),
            ("shape a string", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm]!["shape"] = "16")),
            ("shape fractional", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm]!["shape"] = new JsonArray(16.5))),
            ("entry a string", HfCheckpoint.WeightsFile, Header((h, _) => h[Norm] = "tensor")),
            ("metadata a number", HfCheckpoint.WeightsFile, Header((h, _) => h["__metadata__"] = 5)),
            ("metadata value a number", HfCheckpoint.WeightsFile, Header((h, _) => h["__metadata__"] = new JsonObject { ["format"] = 1 })),
            ("tensor renamed", HfCheckpoint.WeightsFile, Header((h, _) => { var n = h[Norm]!.DeepClone(); h.Remove(Norm); h[Norm + "X"] = n; })),
            ("tensor missing", HfCheckpoint.WeightsFile, Header((h, _) => h.Remove(Norm))),
            ("empty name", HfCheckpoint.WeightsFile, Header((h, _) => { var n = h[Norm]!.DeepClone(); h.Remove(Norm); h[""] = n; })),
            ("header an array", HfCheckpoint.WeightsFile, RawHeader(_ => "[1, 2, 3]")),
            ("header not JSON", HfCheckpoint.WeightsFile, RawHeader(h => h[..(h.Length / 2)] + "\u0001\u0002" + h[(h.Length / 2)..])),
            ("duplicate tensor", HfCheckpoint.WeightsFile, RawHeader(h => "{\"" + Norm + "\":" + JsonNode.Parse(h)![Norm]!.ToJsonString() + "," + h[1..])),
            ("header length 0", HfCheckpoint.WeightsFile, f => Rewrite(f, (json, data) => Write(Path.Combine(f, HfCheckpoint.WeightsFile), json, data, 0))),
            ("header length past the file", HfCheckpoint.WeightsFile, f => Rewrite(f, (json, data) => Write(Path.Combine(f, HfCheckpoint.WeightsFile), json, data, ulong.MaxValue))),
            ("header length the file's", HfCheckpoint.WeightsFile, f => Rewrite(f, (json, data) => Write(Path.Combine(f, HfCheckpoint.WeightsFile), json, data,
                (ulong)(Encoding.UTF8.GetByteCount(json) + data.Length)))),
            ("empty file", HfCheckpoint.WeightsFile, f => File.WriteAllBytes(Path.Combine(f, HfCheckpoint.WeightsFile), [])),
            ("a folder", HfCheckpoint.WeightsFile, f => { File.Delete(Path.Combine(f, HfCheckpoint.WeightsFile)); Directory.CreateDirectory(Path.Combine(f, HfCheckpoint.WeightsFile)); }),
        });
        var failures = Run(cases);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(Counted >= 120, $"{Counted} cases");
    }

    private static void Flip(string folder, int offset, byte value)
    {
        string file = Path.Combine(folder, HfCheckpoint.WeightsFile);
        var bytes = File.ReadAllBytes(file);
        bytes[offset] = value;
        File.WriteAllBytes(file, bytes);
    }

    private static void Rewrite(string folder, Action<string, byte[]> write)
    {
        var (_, header, data) = Parts(Path.Combine(folder, HfCheckpoint.WeightsFile));
        write(header.ToJsonString(), data);
    }

    private static JsonArray Reversed(JsonNode pair) => new(pair[1]!.GetValue<long>(), pair[0]!.GetValue<long>());

    private static string ReplaceFirst(string text, string what, string with)
    {
        int at = text.IndexOf(what, StringComparison.Ordinal);
        return text[..at] + with + text[(at + what.Length)..];
    }

    // ---- config.json ----

    private static Action<string> Config(Action<JsonObject> change) => folder =>
    {
        string file = Path.Combine(folder, "config.json");
        var json = (JsonObject)JsonNode.Parse(File.ReadAllText(file))!;
        change(json);
        File.WriteAllText(file, json.ToJsonString());
    };

    [Fact]
    public void AbsurdConfigsAreRefusedNamingTheFileBeforeAnythingIsAllocated()
    {
        var cases = new List<(string, string, Action<string>)>();
        string[] sizes = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings"];
        JsonNode?[] values = [0, -1, -7, int.MinValue, int.MaxValue, 1_000_000_000_000L, "16", 1.5, true, new JsonArray(), new JsonObject { ["a"] = 1 }];
        foreach (string field in sizes)
            foreach (var value in values)
            {
                string text = value?.ToJsonString() ?? "null";
                cases.Add(($"{field} = {text}", "config.json", Config(c => c[field] = value?.DeepClone())));
            }
        foreach (string field in new[] { "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads" })
            cases.Add(($"{field} missing", "config.json", Config(c => c.Remove(field))));
        cases.AddRange(new (string, string, Action<string>)[]
        {
            ("10^9 layers of width 10^6", "config.json", Config(c => { c["num_hidden_layers"] = 1_000_000_000; c["hidden_size"] = 1_000_000; })),
            ("parameters past the limit", "config.json", Config(c =>
            {
                c["hidden_size"] = 131072; c["intermediate_size"] = 1 << 20; c["num_hidden_layers"] = 1024; c["vocab_size"] = 1 << 22;
                c["num_attention_heads"] = 128; c["num_key_value_heads"] = 8; c["head_dim"] = 128;
            })),
            ("heads not a multiple of kv heads", "config.json", Config(c => { c["num_attention_heads"] = 3; c["num_key_value_heads"] = 2; })),
            ("hidden not a multiple of heads", "config.json", Config(c => { c.Remove("head_dim"); c["num_attention_heads"] = 3; c["num_key_value_heads"] = 3; })),
            ("odd head_dim", "config.json", Config(c => c["head_dim"] = 7)),
            ("attention too wide", "config.json", Config(c => { c["num_attention_heads"] = 1024; c["num_key_value_heads"] = 1; c["head_dim"] = 1024; })),
            ("eos past the vocabulary", "config.json", Config(c => c["eos_token_id"] = 5000)),
            ("negative bos", "config.json", Config(c => c["bos_token_id"] = -5)),
            ("eos of the wrong type", "config.json", Config(c => c["eos_token_id"] = new JsonArray("x"))),
            ("rms_norm_eps negative", "config.json", Config(c => c["rms_norm_eps"] = -1)),
            ("rope_theta zero", "config.json", Config(c => c["rope_theta"] = 0)),
            ("rope_theta text", "config.json", Config(c => c["rope_parameters"] = new JsonObject { ["rope_theta"] = "big", ["rope_type"] = "default" })),
            ("model_type unsupported", "config.json", Config(c => c["model_type"] = "gpt_oss")),
            ("hidden_act unsupported", "config.json", Config(c => c["hidden_act"] = "gelu")),
            ("model_type a number", "config.json", Config(c => c["model_type"] = 5)),
            ("a bigger model than the weights", "model.safetensors", Config(c => c["num_hidden_layers"] = 3)),
            ("a wider model than the weights", "model.safetensors", Config(c => c["intermediate_size"] = 64)),
            ("not JSON", "config.json", f => File.WriteAllText(Path.Combine(f, "config.json"), "{\"model_type\": \"llama\", ")),
            ("an array", "config.json", f => File.WriteAllText(Path.Combine(f, "config.json"), "[1, 2]")),
            ("empty", "config.json", f => File.WriteAllText(Path.Combine(f, "config.json"), "")),
            ("deeply nested", "config.json", f => File.WriteAllText(Path.Combine(f, "config.json"), new string('[', 5000) + new string(']', 5000))),
            ("a pipe", "config.json", f => { File.Delete(Path.Combine(f, "config.json")); MakeFifo(Path.Combine(f, "config.json")); }),
            ("a link outside", "config.json", f => { File.Delete(Path.Combine(f, "config.json")); File.CreateSymbolicLink(Path.Combine(f, "config.json"), Path.Combine(_base, "config.json")); }),
            ("a link to a device", "config.json", f => { File.Delete(Path.Combine(f, "config.json")); File.CreateSymbolicLink(Path.Combine(f, "config.json"), "/dev/zero"); }),
        });
        var failures = Run(cases);
        // Over the size limit for a model folder's JSON files.
        failures.AddRange(Run([("config.json over Limits:ModelJsonBytes", "config.json", Config(c => c["padding"] = new string(' ', 70_000)))],
            SpecLimits.Default with { ModelJsonBytes = 64 << 10 }));
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(Counted >= 110, $"{Counted} cases");
    }

    // ---- tokenizer.json ----

    /// <summary>A byte-level BPE tokenizer.json (GPT-2's byte-to-unicode table, two merges, one special token).</summary>
    private static JsonObject TokenizerJson()
    {
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToHashSet();
        var vocab = new JsonObject();
        int next = 0;
        for (int b = 0; b < 256; b++) vocab[((char)(printable.Contains(b) ? b : 256 + next++)).ToString()] = b;
        vocab["he"] = 256; vocab["ll"] = 257; vocab["<|endoftext|>"] = 258;
        return new JsonObject
        {
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray("h e", "l l") },
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 258, ["content"] = "<|endoftext|>", ["special"] = true }),
        };
    }

    private static Action<string> Tokenizer(Action<JsonObject> change) => folder =>
    {
        var json = TokenizerJson();
        change(json);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.ToJsonString());
    };

    private static JsonObject Split(string pattern) => new()
    {
        ["type"] = "Sequence",
        ["pretokenizers"] = new JsonArray(new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = pattern }, ["behavior"] = "Isolated" }),
    };

    [Fact]
    public void BrokenHugeAndCatastrophicTokenizersAreRefusedNamingTheFile()
    {
        // The valid tokenizer.json passes (its ids are within the config's vocab_size).
        Assert.Empty(Check(Spec(Folder(Tokenizer(_ => { })))));
        string text = TokenizerJson().ToJsonString();
        var cases = new List<(string, string, Action<string>)>();
        for (int i = 1; i <= 12; i++)
        {
            int cut = text.Length * i / 13;
            cases.Add(($"truncated at {cut}", "tokenizer.json", f => File.WriteAllText(Path.Combine(f, "tokenizer.json"), text[..cut])));
        }
        cases.AddRange(new (string, string, Action<string>)[]
        {
            ("negative id", "tokenizer.json", Tokenizer(t => t["model"]!["vocab"]!["he"] = -1)),
            ("huge id", "tokenizer.json", Tokenizer(t => t["model"]!["vocab"]!["he"] = 1_000_000_000)),
            ("id past the config's vocab_size", "tokenizer.json", Tokenizer(t => t["model"]!["vocab"]!["he"] = 400)),
            ("special id past vocab_size", "tokenizer.json", Tokenizer(t => { t["model"]!["vocab"]!["<|endoftext|>"] = 900; t["added_tokens"]![0]!["id"] = 900; })),
            ("id a string", "tokenizer.json", Tokenizer(t => t["model"]!["vocab"]!["he"] = "256")),
            ("id fractional", "tokenizer.json", Tokenizer(t => t["model"]!["vocab"]!["he"] = 2.5)),
            ("vocab an array", "tokenizer.json", Tokenizer(t => t["model"]!["vocab"] = new JsonArray(1))),
            ("vocab missing", "tokenizer.json", Tokenizer(t => ((JsonObject)t["model"]!).Remove("vocab"))),
            ("model missing", "tokenizer.json", Tokenizer(t => t.Remove("model"))),
            ("model type WordPiece", "tokenizer.json", Tokenizer(t => t["model"]!["type"] = "WordPiece")),
            ("model type a number", "tokenizer.json", Tokenizer(t => t["model"]!["type"] = 3)),
            ("merge a number", "tokenizer.json", Tokenizer(t => t["model"]!["merges"] = new JsonArray(5))),
            ("merge a triple", "tokenizer.json", Tokenizer(t => t["model"]!["merges"] = new JsonArray(new JsonArray("a", "b", "c")))),
            ("added token without id", "tokenizer.json", Tokenizer(t => t["added_tokens"] = new JsonArray(new JsonObject { ["content"] = "x" }))),
            ("added token without content", "tokenizer.json", Tokenizer(t => t["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 3 }))),
            ("added token id text", "tokenizer.json", Tokenizer(t => t["added_tokens"]![0]!["id"] = "x")),
            ("invalid regex", "tokenizer.json", Tokenizer(t => t["pre_tokenizer"] = Split("(["))),
            ("catastrophic (a+)+$", "tokenizer.json", Tokenizer(t => t["pre_tokenizer"] = Split("(a+)+$"))),
            ("catastrophic (\\s*)*x", "tokenizer.json", Tokenizer(t => t["pre_tokenizer"] = Split(@"(\s*)*x"))),
            ("catastrophic (\\d|\\d\\d)+!?$", "tokenizer.json", Tokenizer(t => t["pre_tokenizer"] = Split(@"(\d|\d\d)+y"))),
            ("top level an array", "tokenizer.json", f => File.WriteAllText(Path.Combine(f, "tokenizer.json"), "[]")),
            ("not UTF-8 JSON", "tokenizer.json", f => File.WriteAllBytes(Path.Combine(f, "tokenizer.json"), [0xff, 0xfe, 0x00, 0x7b])),
            ("a pipe", "tokenizer.json", f => MakeFifo(Path.Combine(f, "tokenizer.json"))),
            ("generation_config.json eos a list of text", "generation_config.json", f =>
            {
                Tokenizer(_ => { })(f);
                File.WriteAllText(Path.Combine(f, "generation_config.json"), "{\"eos_token_id\": [\"x\", null]}");
            }),
            ("generation_config.json eos fractional", "generation_config.json", f =>
            {
                Tokenizer(_ => { })(f);
                File.WriteAllText(Path.Combine(f, "generation_config.json"), "{\"eos_token_id\": 2.5}");
            }),
            ("tokenizer_config.json not JSON", "tokenizer_config.json", f => File.WriteAllText(Path.Combine(f, "tokenizer_config.json"), "{")),
        });
        var failures = Run(cases);
        failures.AddRange(Run([("tokenizer.json over Limits:ModelJsonBytes", "tokenizer.json", Tokenizer(t => t["padding"] = new string(' ', 70_000)))],
            SpecLimits.Default with { ModelJsonBytes = 64 << 10 }));
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(Counted >= 35, $"{Counted} cases");
    }

    // ---- sharded folders, links, pipes ----

    private const string ShardName = "model-00001-of-00001.safetensors";

    /// <summary>The weights moved into one shard named by an index, each tensor mapped to <paramref name="target"/>(name).</summary>
    private static void Shard(string folder) => ShardTo(folder, _ => ShardName);

    private static void ShardTo(string folder, Func<string, JsonNode?> target)
    {
        string weights = Path.Combine(folder, HfCheckpoint.WeightsFile);
        var names = SafeTensors.ReadIndex(weights).Keys;
        File.Move(weights, Path.Combine(folder, ShardName));
        var map = new JsonObject();
        foreach (var name in names) map[name] = target(name);
        File.WriteAllText(Path.Combine(folder, HfCheckpoint.IndexFile), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());
    }

    private static Action<string> Index(Func<string, JsonNode?> target) => folder => ShardTo(folder, target);

    private static Action<string> IndexText(string text) => folder =>
    {
        Shard(folder);
        File.WriteAllText(Path.Combine(folder, HfCheckpoint.IndexFile), text);
    };

    [Fact]
    public void IndexFilesPointingOutsideLinksAndPipesAreRefusedNamingTheFile()
    {
        const string IndexFile = HfCheckpoint.IndexFile;
        string inside = Path.Combine(_root, "elsewhere-in-root");
        Directory.CreateDirectory(inside);
        File.Copy(Path.Combine(_base, HfCheckpoint.WeightsFile), Path.Combine(inside, ShardName));
        File.Copy(Path.Combine(_base, HfCheckpoint.WeightsFile), Path.Combine(_outside, ShardName));
        var cases = new List<(string, string, Action<string>)>
        {
            ("../../../../etc/hostname", IndexFile, Index(_ => "../../../../etc/hostname")),
            ("/etc/hostname", IndexFile, Index(_ => "/etc/hostname")),
            ("a shard outside by ../", IndexFile, Index(_ => $"../../{Path.GetFileName(_outside)}/{ShardName}")),
            ("a shard outside by absolute path", IndexFile, Index(_ => Path.Combine(_outside, ShardName))),
            ("through a linked sub-folder inside the root", IndexFile, f => { Directory.CreateSymbolicLink(Path.Combine(f, "sub"), inside); ShardTo(f, _ => $"sub/{ShardName}"); }),
            ("through a real sub-folder", IndexFile, f =>
            {
                Directory.CreateDirectory(Path.Combine(f, "sub"));
                File.Copy(Path.Combine(_base, HfCheckpoint.WeightsFile), Path.Combine(f, "sub", ShardName));
                ShardTo(f, _ => $"sub/{ShardName}");
            }),
            ("a sub-folder linked outside", "sub", f => { Directory.CreateSymbolicLink(Path.Combine(f, "sub"), _outside); Shard(f); }),
            ("..", IndexFile, Index(_ => "..")),
            (".", IndexFile, Index(_ => ".")),
            ("empty name", IndexFile, Index(_ => "")),
            ("NUL in the name", IndexFile, Index(_ => "model\u0000.safetensors")),
            ("backslash", IndexFile, Index(_ => "..\\x.safetensors")),
            ("a 300-character name", IndexFile, Index(_ => new string('a', 300))),
            ("a number", IndexFile, Index(_ => 5)),
            ("null", IndexFile, Index(_ => null)),
            ("weight_map an array", IndexFile, IndexText("{\"weight_map\": []}")),
            ("weight_map missing", IndexFile, IndexText("{\"metadata\": {}}")),
            ("weight_map empty", IndexFile, IndexText("{\"weight_map\": {}}")),
            ("index not JSON", IndexFile, IndexText("{\"weight_map\": {")),
            ("index a string", IndexFile, IndexText("\"model.safetensors\"")),
            ("a missing shard", IndexFile, Index(_ => "model-00002-of-00002.safetensors")),
            ("a shard that is a sub-folder", IndexFile, f => { Directory.CreateDirectory(Path.Combine(f, "shards")); ShardTo(f, _ => "shards"); }),
            ("a shard that is a pipe", "fifo.safetensors", f => { MakeFifo(Path.Combine(f, "fifo.safetensors")); ShardTo(f, _ => "fifo.safetensors"); }),
            ("a shard linked outside", ShardName, f =>
            {
                Shard(f);
                File.Delete(Path.Combine(f, ShardName));
                File.CreateSymbolicLink(Path.Combine(f, ShardName), Path.Combine(_outside, ShardName));
            }),
            ("a shard linked to a device", ShardName, f => { Shard(f); File.Delete(Path.Combine(f, ShardName)); File.CreateSymbolicLink(Path.Combine(f, ShardName), "/dev/zero"); }),
            ("a shard linked to /etc/hostname", ShardName, f => { Shard(f); File.Delete(Path.Combine(f, ShardName)); File.CreateSymbolicLink(Path.Combine(f, ShardName), "/etc/hostname"); }),
            ("a shard that is not safetensors", ShardName, f => { Shard(f); File.WriteAllText(Path.Combine(f, ShardName), "not-a-model\n"); }),
            ("a tensor in two shards", "model-b.safetensors", f =>
            {
                Shard(f);
                File.Copy(Path.Combine(f, ShardName), Path.Combine(f, "model-b.safetensors"));
                File.WriteAllText(Path.Combine(f, IndexFile), new JsonObject { ["weight_map"] = new JsonObject { ["a"] = ShardName, ["b"] = "model-b.safetensors" } }.ToJsonString());
            }),
            ("model.safetensors a pipe", HfCheckpoint.WeightsFile, f => { File.Delete(Path.Combine(f, HfCheckpoint.WeightsFile)); MakeFifo(Path.Combine(f, HfCheckpoint.WeightsFile)); }),
            ("model.safetensors linked outside", HfCheckpoint.WeightsFile, f =>
            {
                File.Delete(Path.Combine(f, HfCheckpoint.WeightsFile));
                File.CreateSymbolicLink(Path.Combine(f, HfCheckpoint.WeightsFile), Path.Combine(_base, HfCheckpoint.WeightsFile));
            }),
            ("no weights at all", HfCheckpoint.WeightsFile, f => File.Delete(Path.Combine(f, HfCheckpoint.WeightsFile))),
        };
        var failures = Run(cases);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.True(Counted >= 30, $"{Counted} cases");
    }

    [Fact]
    public void TheLoaderRefusesWhatTheSpecCheckRefusesWithoutAllocating()
    {
        // No data roots in the way: the loaders' own checks, as a silo runs them when the phase starts.
        string outsideIndex = Folder(Index(_ => "../../../../etc/hostname"));
        Assert.Contains($"{HfCheckpoint.IndexFile}: shard '../../../../etc/hostname' must be a plain file name inside the folder",
            Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(outsideIndex, TorchSharp.torch.CPU)).Message);
        string huge = Folder(Config(c => { c["num_hidden_layers"] = 1_000_000_000; c["hidden_size"] = 1_000_000; }));
        var e = Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(huge, TorchSharp.torch.CPU));
        Assert.StartsWith($"{Path.Combine(huge, "config.json")}: ", e.Message);
        Assert.Contains("num_hidden_layers must be between 1 and 1024, got 1000000000", e.Message);
        string shape = Folder(Header((h, _) => h[Norm]!["shape"] = new JsonArray(100000, 100000)));
        Assert.Contains($"{HfCheckpoint.WeightsFile}: tensor '{Norm}': spans 64 bytes but shape [100000, 100000] of F32 needs 40000000000",
            Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(shape, TorchSharp.torch.CPU)).Message);
        string pipe = Folder(f => { File.Delete(Path.Combine(f, HfCheckpoint.WeightsFile)); MakeFifo(Path.Combine(f, HfCheckpoint.WeightsFile)); });
        Assert.Contains("is not a regular file", Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(pipe, TorchSharp.torch.CPU)).Message);
        // A model whose tokenizer's ids pass its vocab_size never reaches the device.
        string smallVocabulary = Path.Combine(_root, "small-vocabulary");
        using (var model = BuiltinModels.Create(Small with { VocabSize = 200 }, 3))
            HfCheckpoint.Save(model, smallVocabulary, new ByteTokenizer().HfFiles());
        Assert.Contains(Check(Spec(smallVocabulary)), p => p.Contains("tokenizer_config.json: the tokenizer's ids go up to 258, but") && p.Contains("config.json has vocab_size 200"));
    }

    [Fact]
    public void ARewardModelWhoseVocabularyIsSmallerThanThePolicysTokenizerIsRefused()
    {
        string reward = Path.Combine(_root, "reward");
        using (var backbone = BuiltinModels.Create(Small with { VocabSize = 200 }, 4))
            new RewardModel(backbone).Save(reward);
        var problems = Check(Spec(Folder(_ => { }), judge: "reward_model", reward: reward));
        Assert.Contains(problems, p => p.StartsWith("judge.reward_model_folder: ", StringComparison.Ordinal)
            && p.Contains($"{Path.Combine(reward, "config.json")} has vocab_size 200"));
        // Its head must fit its backbone.
        string badHead = Path.Combine(_root, "reward-bad-head");
        using (var backbone = BuiltinModels.Create(Small, 4))
            new RewardModel(backbone).Save(badHead);
        using (var wrong = TorchSharp.torch.zeros(1, 7))
            SafeTensors.Write(Path.Combine(badHead, RewardModel.HeadFile), new Dictionary<string, TorchSharp.torch.Tensor> { ["score.weight"] = wrong });
        Assert.Contains(Check(Spec(Folder(_ => { }), judge: "reward_model", reward: badHead)),
            p => p.Contains($"{RewardModel.HeadFile}: tensor 'score.weight' has shape [1, 7], the backbone needs [1, 16]"));
    }

    [Fact]
    public void ExpectedShapesMirrorTheDecodersParameters()
    {
        foreach (var config in new[] { Small, Small with { TieWordEmbeddings = true }, Small with { ModelType = "qwen2", AttentionBias = true } })
        {
            using var model = new DecoderLM(config);
            var actual = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
            Assert.Equal(actual.Keys.Order(), CheckpointShapes.Expected(config).Keys.Order());
            foreach (var (name, shape) in CheckpointShapes.Expected(config)) Assert.Equal(actual[name], shape);
        }
    }

    [Fact]
    public void AFileIsOpenedFromItsResolvedPathAndOnlyIfRegular()
    {
        string folder = RepositoryPaths.NewTempFolder("model-file");
        File.WriteAllText(Path.Combine(folder, "real.json"), "{}");
        File.CreateSymbolicLink(Path.Combine(folder, "link.json"), Path.Combine(folder, "real.json"));
        Assert.Equal("{}", ModelFile.ReadAllText(Path.Combine(folder, "link.json")));
        // A pipe is refused without blocking (opened non-blocking, checked on the handle); a folder, a device and a missing file too.
        MakeFifo(Path.Combine(folder, "pipe.json"));
        Assert.Contains("pipe.json: is not a regular file", Assert.Throws<InvalidDataException>(() => ModelFile.OpenRead(Path.Combine(folder, "pipe.json"))).Message);
        Assert.Contains("is not a regular file", Assert.Throws<InvalidDataException>(() => ModelFile.OpenRead(folder)).Message);
        Assert.Contains("is not a regular file", Assert.Throws<InvalidDataException>(() => ModelFile.OpenRead("/dev/zero")).Message);
        Assert.Throws<FileNotFoundException>(() => ModelFile.OpenRead(Path.Combine(folder, "missing.json")));
        Assert.Contains("the limit is 1", Assert.Throws<InvalidDataException>(() => ModelFile.ReadAllText(Path.Combine(folder, "real.json"), maxBytes: 1)).Message);
    }

    private static void MakeFifo(string path)
    {
        using var process = Process.Start("mkfifo", [path])!;
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }
}
