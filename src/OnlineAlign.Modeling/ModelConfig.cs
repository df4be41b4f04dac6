using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnlineAlign.Modeling;

/// <summary>
/// The decoder's shape, read from a Hugging Face config.json (Llama, Qwen2, Qwen3 and Gemma 3 text families). What
/// this implementation cannot run is refused with the field and the value that make it unsupported.
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
    /// <summary>The MLP's gate activation: "silu" (SwiGLU) or "gelu_pytorch_tanh" (Gemma 3's GeGLU).</summary>
    public string HiddenAct { get; init; } = "silu";
    /// <summary>Attention scores are scaled by 1/sqrt of this (Gemma 3's query_pre_attn_scalar); 0 = head_dim.</summary>
    public double QueryPreAttnScalar { get; init; }
    /// <summary>"sliding_attention" or "full_attention" per layer (Gemma 3); null = every layer attends globally.</summary>
    public IReadOnlyList<string>? LayerTypes { get; init; }
    /// <summary>How many positions back (itself included) a sliding-attention layer's query sees.</summary>
    public int SlidingWindow { get; init; }
    /// <summary>Rotary base of the sliding-attention layers (Gemma 3's rope_local_base_freq); global layers use RopeTheta.</summary>
    public double RopeLocalTheta { get; init; } = 10000.0;
    /// <summary>Logits become cap * tanh(logits / cap) when set.</summary>
    public double? FinalLogitSoftcapping { get; init; }
    /// <summary>Attention scores become cap * tanh(scores / cap) before the mask when set.</summary>
    public double? AttnLogitSoftcapping { get; init; }

    /// <summary>Per-head RMSNorm of queries and keys before the rotary embedding (Qwen3, Gemma 3).</summary>
    public bool QkNorm => ModelType is "qwen3" or GemmaText;
    /// <summary>
    /// Gemma 3's block: norms scale by (1 + weight), the embedding is scaled by sqrt(hidden_size), and each sub-layer's
    /// output is normed too (post_attention_layernorm, pre_ and post_feedforward_layernorm).
    /// </summary>
    public bool GemmaNorms => ModelType == GemmaText;
    public bool IsSlidingLayer(int layer) => LayerTypes is not null && LayerTypes[layer] == SlidingAttention;
    public bool HasSlidingLayers => LayerTypes?.Contains(SlidingAttention) == true;

    public const string GemmaText = "gemma3_text";
    public const string SlidingAttention = "sliding_attention";
    public const string FullAttention = "full_attention";

    public static readonly string[] SupportedModelTypes = ["llama", "qwen2", "qwen3", GemmaText];

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

    /// <summary>The config a JSON object describes, its sizes checked (<see cref="ModelConfigCheck"/>); every refusal names <paramref
    /// name="source"/>.</summary>
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
        if (modelType == "gemma3")
            throw new NotSupportedException($"{source}: model_type 'gemma3' (Gemma 3 with its vision tower) is not supported; its text model is " +
                $"(model_type '{GemmaText}', the text_config's fields at the top level and the language model's weights alone)");
        if (!SupportedModelTypes.Contains(modelType))
            throw new NotSupportedException($"{source}: model_type '{modelType}' is not supported (supported: {string.Join(", ", SupportedModelTypes)})");
        bool gemma = modelType == GemmaText;
        string act = Activation(json, gemma ? "gelu_pytorch_tanh" : "silu", source);
        if (Bool(json, "mlp_bias", source) == true)
            throw new NotSupportedException($"{source}: mlp_bias true is not supported");
        if (json["rope_scaling"] is JsonObject scaling && Str(scaling, "rope_type", source) is string st && st != "default")
            throw new NotSupportedException($"{source}: rope_scaling type '{st}' is not supported (only default rotary embeddings)");
        var (globalRope, localRope) = RopeParameters(json, source);
        if (Bool(json, "use_sliding_window", source) == true)
            throw new NotSupportedException($"{source}: use_sliding_window true is not supported");
        if (Int(json, "pretraining_tp", source) is int tp && tp != 1)
            throw new NotSupportedException($"{source}: pretraining_tp {tp} is not supported (only 1)");
        if (Bool(json, "use_bidirectional_attention", source) == true)
            throw new NotSupportedException($"{source}: use_bidirectional_attention true is not supported (only causal attention)");

        int hidden = Int(json, "hidden_size", source) ?? throw Missing("hidden_size", source);
        int heads = Int(json, "num_attention_heads", source) ?? throw Missing("num_attention_heads", source);
        int kvHeads = Int(json, "num_key_value_heads", source) ?? heads;
        int layers = Int(json, "num_hidden_layers", source) ?? throw Missing("num_hidden_layers", source);
        // Without head_dim, transformers uses its family's default: 128 for Qwen3, 256 for Gemma 3, else
        // hidden_size / num_attention_heads (which must then divide exactly).
        int? headDim = Int(json, "head_dim", source) ?? modelType switch { "qwen3" => 128, GemmaText => 256, _ => null };
        if (headDim is null && heads > 0 && hidden % heads != 0)
            throw new InvalidDataException($"{source}: hidden_size {hidden} is not a multiple of num_attention_heads {heads} (and head_dim is not given)");
        double theta = globalRope ?? Double(json, "rope_theta", source) ?? (gemma ? 1_000_000.0 : 10000.0);

        return new ModelConfig
        {
            ModelType = modelType,
            VocabSize = Int(json, "vocab_size", source) ?? throw Missing("vocab_size", source),
            HiddenSize = hidden,
            IntermediateSize = Int(json, "intermediate_size", source) ?? throw Missing("intermediate_size", source),
            NumLayers = layers,
            NumHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim ?? (heads > 0 ? hidden / heads : 0),
            RmsNormEps = Double(json, "rms_norm_eps", source) ?? 1e-6,
            RopeTheta = theta,
            MaxPositions = Int(json, "max_position_embeddings", source) ?? 2048,
            // Qwen2 always has q/k/v bias and no attention_bias field; the others have it as a switch.
            AttentionBias = modelType == "qwen2" || (Bool(json, "attention_bias", source) ?? false),
            // transformers' default differs by family: Gemma 3 ties the head to the embedding unless told otherwise.
            TieWordEmbeddings = Bool(json, "tie_word_embeddings", source) ?? gemma,
            BosTokenId = TokenId(json, "bos_token_id", source),
            EosTokenId = TokenId(json, "eos_token_id", source),
            PadTokenId = TokenId(json, "pad_token_id", source),
            TorchDtype = Str(json, "torch_dtype", source) ?? Str(json, "dtype", source) ?? "float32",
            HiddenAct = act,
            QueryPreAttnScalar = gemma ? Double(json, "query_pre_attn_scalar", source) ?? 256 : 0,
            LayerTypes = LayerTypesOf(json, gemma, layers, source),
            SlidingWindow = gemma ? Int(json, "sliding_window", source) ?? 4096 : 0,
            RopeLocalTheta = localRope ?? Double(json, "rope_local_base_freq", source) ?? 10000.0,
            FinalLogitSoftcapping = Double(json, "final_logit_softcapping", source),
            AttnLogitSoftcapping = Double(json, "attn_logit_softcapping", source),
        };
    }

    /// <summary>hidden_act (or Gemma's hidden_activation): only the activation the family's MLP uses.</summary>
    private static string Activation(JsonObject json, string expected, string source)
    {
        foreach (var field in new[] { "hidden_activation", "hidden_act" })
            if (Str(json, field, source) is string act && act != expected)
                throw new NotSupportedException($"{source}: {field} '{act}' is not supported (only {expected}, the gated MLP of this model_type)");
        return expected;
    }

    /// <summary>
    /// rope_parameters as transformers 5 writes it: one {rope_type, rope_theta} object, or (Gemma 3) one per layer type,
    /// keyed full_attention and sliding_attention. Only the default rotary type is supported. Returns the thetas found.
    /// </summary>
    private static (double? Global, double? Local) RopeParameters(JsonObject json, string source)
    {
        if (json["rope_parameters"] is not JsonObject rp) return (null, null);
        double? Theta(JsonObject p, string field)
        {
            if (Str(p, "rope_type", source) is string rt && rt != "default")
                throw new NotSupportedException($"{source}: {field}.rope_type '{rt}' is not supported (only default)");
            return Double(p, "rope_theta", source);
        }
        if (rp[FullAttention] is JsonObject || rp[SlidingAttention] is JsonObject)
            return (rp[FullAttention] is JsonObject f ? Theta(f, $"rope_parameters.{FullAttention}") : null,
                    rp[SlidingAttention] is JsonObject l ? Theta(l, $"rope_parameters.{SlidingAttention}") : null);
        return (Theta(rp, "rope_parameters"), null);
    }

    /// <summary>
    /// Gemma 3's layer kinds: layer_types, or the older sliding_window_pattern (default 6: every sixth layer global). Other
    /// families attend globally in every layer; a layer_types asking them for sliding attention is refused.
    /// </summary>
    private static List<string>? LayerTypesOf(JsonObject json, bool gemma, int layers, string source)
    {
        if (json["layer_types"] is JsonArray list)
        {
            var types = list.Select((n, i) => n is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>()
                : throw new InvalidDataException($"{source}: layer_types[{i}] must be a string, got {n?.ToJsonString() ?? "null"}")).ToList();
            for (int i = 0; i < types.Count; i++)
                if (types[i] != FullAttention && (types[i] != SlidingAttention || !gemma))
                    throw new NotSupportedException($"{source}: layer_types[{i}] '{types[i]}' is not supported (only " +
                        $"{FullAttention}{(gemma ? $" and {SlidingAttention}" : "")})");
            return gemma ? types : null;
        }
        if (json["layer_types"] is JsonNode other)
            throw new InvalidDataException($"{source}: field 'layer_types' must be a list, got {other.ToJsonString()}");
        if (!gemma) return null;
        int pattern = Int(json, "sliding_window_pattern", source) ?? 6;
        if (pattern < 1) throw new InvalidDataException($"{source}: sliding_window_pattern must be at least 1, got {pattern}");
        return Enumerable.Range(0, Math.Max(layers, 0)).Select(i => (i + 1) % pattern != 0 ? SlidingAttention : FullAttention).ToList();
    }

    /// <summary>A Hugging Face config.json for this shape, so transformers loads what we save.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(ModelType switch
            {
                "qwen2" => "Qwen2ForCausalLM", "qwen3" => "Qwen3ForCausalLM", GemmaText => "Gemma3ForCausalLM", _ => "LlamaForCausalLM",
            }),
            ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumLayers,
            ["num_attention_heads"] = NumHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["head_dim"] = HeadDim,
            [GemmaNorms ? "hidden_activation" : "hidden_act"] = HiddenAct,
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["max_position_embeddings"] = MaxPositions,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["torch_dtype"] = TorchDtype,
            ["use_cache"] = true,
        };
        if (ModelType == "llama") { json["attention_bias"] = AttentionBias; json["mlp_bias"] = false; }
        if (ModelType == "qwen3") { json["attention_bias"] = AttentionBias; json["use_sliding_window"] = false; }
        if (GemmaNorms)
        {
            json["attention_bias"] = AttentionBias;
            json["query_pre_attn_scalar"] = QueryPreAttnScalar;
            json["sliding_window"] = SlidingWindow;
            json["layer_types"] = new JsonArray(LayerTypes!.Select(t => (JsonNode)t).ToArray());
            json["rope_local_base_freq"] = RopeLocalTheta;
            json["final_logit_softcapping"] = FinalLogitSoftcapping;
            json["attn_logit_softcapping"] = AttnLogitSoftcapping;
        }
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
            long norms = (GemmaNorms ? 4L : 2L) * HiddenSize + (QkNorm ? 2L * HeadDim : 0);
            long perLayer = attn + mlp + norms;
            long embed = (long)VocabSize * HiddenSize;
            return embed * (TieWordEmbeddings ? 1 : 2) + NumLayers * perLayer + HiddenSize;
        }
    }

    private static InvalidDataException Missing(string field, string source) =>
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
