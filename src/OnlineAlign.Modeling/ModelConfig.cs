using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnlineAlign.Modeling;

/// <summary>
/// The decoder's shape, read from a Hugging Face config.json (Llama and Qwen2 families). What this
/// implementation cannot run is refused with the field and the value that make it unsupported.
/// </summary>
public sealed record ModelConfig
{
    public string ModelType { get; init; } = "llama";
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int IntermediateSize { get; init; }
    public int NumLayers { get; init; }
    public int NumHeads { get; init; }
    public int NumKeyValueHeads { get; init; }
    public int HeadDim { get; init; }
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    public int MaxPositions { get; init; } = 2048;
    public bool AttentionBias { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public int BosTokenId { get; init; } = -1;
    public int EosTokenId { get; init; } = -1;
    public int PadTokenId { get; init; } = -1;
    /// <summary>The dtype the checkpoint was saved in ("float32", "bfloat16", "float16").</summary>
    public string TorchDtype { get; init; } = "float32";

    public static readonly string[] SupportedModelTypes = ["llama", "qwen2"];

    public static ModelConfig Load(string path)
    {
        JsonObject json;
        try
        {
            json = JsonNode.Parse(Checkpoints.ModelFile.ReadAllText(path)) as JsonObject
                ?? throw new InvalidDataException($"{path}: the top level must be a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON (line {e.LineNumber + 1}): {e.Message}", e);
        }
        return FromJson(json, path);
    }

    /// <summary>The config a JSON object describes, its sizes checked (<see cref="ModelConfigCheck"/>); every refusal names <paramref name="source"/>.</summary>
    public static ModelConfig FromJson(JsonObject json, string source = "config.json")
    {
        try { return ModelConfigCheck.Require(Parse(json, source), source); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{source}: a field has the wrong type: {e.Message}", e);
        }
    }

    private static ModelConfig Parse(JsonObject json, string source)
    {
        string modelType = Str(json, "model_type", source) ?? throw Missing("model_type", source);
        if (!SupportedModelTypes.Contains(modelType))
            throw new NotSupportedException($"{source}: model_type '{modelType}' is not supported (supported: {string.Join(", ", SupportedModelTypes)})");
        string? act = Str(json, "hidden_act", source);
        if (act is not null && act != "silu")
            throw new NotSupportedException($"{source}: hidden_act '{act}' is not supported (only silu, the SwiGLU MLP)");
        if (Bool(json, "mlp_bias", source) == true)
            throw new NotSupportedException($"{source}: mlp_bias true is not supported");
        if (json["rope_scaling"] is JsonObject scaling && Str(scaling, "rope_type", source) is string st && st != "default")
            throw new NotSupportedException($"{source}: rope_scaling type '{st}' is not supported (only default rotary embeddings)");
        if (json["rope_parameters"] is JsonObject rp && Str(rp, "rope_type", source) is string rt && rt != "default")
            throw new NotSupportedException($"{source}: rope_parameters.rope_type '{rt}' is not supported (only default)");
        if (Bool(json, "use_sliding_window", source) == true)
            throw new NotSupportedException($"{source}: use_sliding_window true is not supported");
        if (Int(json, "pretraining_tp", source) is int tp && tp != 1)
            throw new NotSupportedException($"{source}: pretraining_tp {tp} is not supported (only 1)");

        int hidden = Int(json, "hidden_size", source) ?? throw Missing("hidden_size", source);
        int heads = Int(json, "num_attention_heads", source) ?? throw Missing("num_attention_heads", source);
        int kvHeads = Int(json, "num_key_value_heads", source) ?? heads;
        // Without head_dim, transformers uses hidden_size / num_attention_heads: it must divide exactly.
        int? headDim = Int(json, "head_dim", source);
        if (headDim is null && heads > 0 && hidden % heads != 0)
            throw new InvalidDataException($"{source}: hidden_size {hidden} is not a multiple of num_attention_heads {heads} (and head_dim is not given)");
        double theta = (json["rope_parameters"] as JsonObject)?["rope_theta"]?.GetValue<double>()
            ?? Double(json, "rope_theta", source) ?? 10000.0;

        return new ModelConfig
        {
            ModelType = modelType,
            VocabSize = Int(json, "vocab_size", source) ?? throw Missing("vocab_size", source),
            HiddenSize = hidden,
            IntermediateSize = Int(json, "intermediate_size", source) ?? throw Missing("intermediate_size", source),
            NumLayers = Int(json, "num_hidden_layers", source) ?? throw Missing("num_hidden_layers", source),
            NumHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim ?? (heads > 0 ? hidden / heads : 0),
            RmsNormEps = Double(json, "rms_norm_eps", source) ?? 1e-6,
            RopeTheta = theta,
            MaxPositions = Int(json, "max_position_embeddings", source) ?? 2048,
            // Qwen2 always has q/k/v bias and no attention_bias field; Llama has it as a switch.
            AttentionBias = modelType == "qwen2" || (Bool(json, "attention_bias", source) ?? false),
            TieWordEmbeddings = Bool(json, "tie_word_embeddings", source) ?? false,
            BosTokenId = TokenId(json, "bos_token_id", source),
            EosTokenId = TokenId(json, "eos_token_id", source),
            PadTokenId = TokenId(json, "pad_token_id", source),
            TorchDtype = Str(json, "torch_dtype", source) ?? Str(json, "dtype", source) ?? "float32",
        };
    }

    /// <summary>A Hugging Face config.json for this shape, so transformers loads what we save.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(ModelType == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"),
            ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumLayers,
            ["num_attention_heads"] = NumHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["head_dim"] = HeadDim,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["max_position_embeddings"] = MaxPositions,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["torch_dtype"] = TorchDtype,
            ["use_cache"] = true,
        };
        if (ModelType == "llama") { json["attention_bias"] = AttentionBias; json["mlp_bias"] = false; }
        if (BosTokenId >= 0) json["bos_token_id"] = BosTokenId;
        if (EosTokenId >= 0) json["eos_token_id"] = EosTokenId;
        if (PadTokenId >= 0) json["pad_token_id"] = PadTokenId;
        return json;
    }

    /// <summary>Weights in the model, in checked 64-bit arithmetic (OverflowException rather than a count that wrapped around).</summary>
    public long ParameterCount()
    {
        checked
        {
            long attn = (long)HiddenSize * HeadDim * (NumHeads * 2L + NumKeyValueHeads * 2L)
                        + (AttentionBias ? (long)HeadDim * (NumHeads + 2L * NumKeyValueHeads) : 0);
            long mlp = 3L * HiddenSize * IntermediateSize;
            long perLayer = attn + mlp + 2L * HiddenSize;
            long embed = (long)VocabSize * HiddenSize;
            return embed * (TieWordEmbeddings ? 1 : 2) + NumLayers * perLayer + HiddenSize;
        }
    }

    private static Exception Missing(string field, string source) =>
        new InvalidDataException($"{source}: required field '{field}' is missing");

    private static T? Read<T>(JsonObject json, string field, string source, Func<JsonNode, T> read) where T : struct
    {
        var node = json[field];
        if (node is null) return null;
        try { return read(node); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{source}: field '{field}' has the wrong type ({node.ToJsonString()}): expected {typeof(T).Name}");
        }
    }

    private static int? Int(JsonObject j, string f, string s) => Read(j, f, s, n => n.GetValue<int>());
    private static double? Double(JsonObject j, string f, string s) => Read(j, f, s, n => n.GetValue<double>());
    private static bool? Bool(JsonObject j, string f, string s) => Read(j, f, s, n => n.GetValue<bool>());
    private static string? Str(JsonObject j, string f, string s)
    {
        var node = j[f];
        if (node is null) return null;
        return node.GetValueKind() == JsonValueKind.String ? node.GetValue<string>()
            : throw new InvalidDataException($"{s}: field '{f}' must be a string, got {node.ToJsonString()}");
    }

    /// <summary>Token ids may be a number, a list (first one used), or null.</summary>
    private static int TokenId(JsonObject json, string field, string source) => json[field] switch
    {
        null => -1,
        JsonArray { Count: > 0 } list => list[0]!.GetValue<int>(),
        JsonArray => -1,
        var node => Int(json, field, source) ?? -1,
    };
}
