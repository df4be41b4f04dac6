namespace OnlineAlign.Modeling;

/// <summary>
/// What a config.json may ask for, checked before a memory plan is made or anything is allocated: a config is hostile
/// input, and its sizes decide every allocation that follows (10^9 layers once took a silo past its memory). The limits
/// admit every released Llama/Qwen2/Qwen3/Gemma 3-family model (the largest, ~1T parameters, has hidden_size ~16k, 126 layers,
/// vocabularies ~256k) with room to spare, but not sizes that can only be a typo or an attack; products are computed in
/// checked 64-bit, so no size wraps around to look small.
/// </summary>
public static class ModelConfigCheck
{
    public const int MaxHiddenSize = 1 << 17;
    public const int MaxIntermediateSize = 1 << 20;
    public const int MaxLayers = 1024;
    public const int MaxHeads = 1024;
    public const int MaxHeadDim = 1024;
    public const int MaxVocabSize = 1 << 22;
    public const int MaxPositionEmbeddings = 1 << 26;
    /// <summary>Query width (heads x head_dim): the largest real models use 16k.</summary>
    public const long MaxAttentionWidth = 1 << 17;
    public const long MaxParameters = 2_000_000_000_000;

    /// <summary>Every problem with the config's sizes, each naming its config.json field and value; empty when it is usable.</summary>
    public static List<string> Problems(ModelConfig c)
    {
        var problems = new List<string>();
        void Range(string field, long value, long max)
        {
            if (value < 1 || value > max) problems.Add($"{field} must be between 1 and {max}, got {value}");
        }
        Range("vocab_size", c.VocabSize, MaxVocabSize);
        Range("hidden_size", c.HiddenSize, MaxHiddenSize);
        Range("intermediate_size", c.IntermediateSize, MaxIntermediateSize);
        Range("num_hidden_layers", c.NumLayers, MaxLayers);
        Range("num_attention_heads", c.NumHeads, MaxHeads);
        Range("num_key_value_heads", c.NumKeyValueHeads, MaxHeads);
        Range("head_dim", c.HeadDim, MaxHeadDim);
        Range("max_position_embeddings", c.MaxPositions, MaxPositionEmbeddings);
        if (problems.Count > 0) return problems; // the rules below divide and multiply these
        if (c.NumHeads % c.NumKeyValueHeads != 0)
            problems.Add($"num_attention_heads {c.NumHeads} is not a multiple of num_key_value_heads {c.NumKeyValueHeads}");
        if (c.HeadDim % 2 != 0) problems.Add($"head_dim {c.HeadDim} must be even (rotary embeddings rotate pairs)");
        if ((long)c.NumHeads * c.HeadDim > MaxAttentionWidth)
            problems.Add($"num_attention_heads x head_dim is {(long)c.NumHeads * c.HeadDim}; the limit is {MaxAttentionWidth}");
        if (!double.IsFinite(c.RmsNormEps) || c.RmsNormEps <= 0 || c.RmsNormEps >= 1)
            problems.Add($"rms_norm_eps must be a number in (0, 1), got {c.RmsNormEps}");
        if (!double.IsFinite(c.RopeTheta) || c.RopeTheta <= 0) problems.Add($"rope_theta must be a positive number, got {c.RopeTheta}");
        if (c.LayerTypes is not null && c.LayerTypes.Count != c.NumLayers)
            problems.Add($"layer_types has {c.LayerTypes.Count} entries for num_hidden_layers {c.NumLayers}");
        if (c.HasSlidingLayers && c.SlidingWindow < 1) problems.Add($"sliding_window must be at least 1, got {c.SlidingWindow}");
        if (c.HasSlidingLayers && (!double.IsFinite(c.RopeLocalTheta) || c.RopeLocalTheta <= 0))
            problems.Add($"rope_local_base_freq must be a positive number, got {c.RopeLocalTheta}");
        if (!double.IsFinite(c.QueryPreAttnScalar) || c.QueryPreAttnScalar < 0 || (c.GemmaNorms && c.QueryPreAttnScalar == 0))
            problems.Add($"query_pre_attn_scalar must be a positive number, got {c.QueryPreAttnScalar}");
        foreach (var (field, cap) in new[] { ("final_logit_softcapping", c.FinalLogitSoftcapping), ("attn_logit_softcapping", c.AttnLogitSoftcapping) })
            if (cap is double v && (!double.IsFinite(v) || v <= 0)) problems.Add($"{field} must be a positive number or null, got {v}");
        foreach (var (field, id) in new[] { ("bos_token_id", c.BosTokenId), ("eos_token_id", c.EosTokenId), ("pad_token_id", c.PadTokenId) })
            if (id < -1 || id >= c.VocabSize) problems.Add($"{field} {id} is not a token id below vocab_size {c.VocabSize}");
        if (problems.Count > 0) return problems;
        long parameters;
        try { parameters = c.ParameterCount(); }
        catch (OverflowException) { parameters = long.MaxValue; }
        if (parameters > MaxParameters) problems.Add($"the sizes give {parameters} parameters; the limit is {MaxParameters}");
        return problems;
    }

    /// <summary>Throws InvalidDataException naming <paramref name="source"/> and every problem, if there is one.</summary>
    public static ModelConfig Require(ModelConfig c, string source)
    {
        var problems = Problems(c);
        if (problems.Count > 0) throw new InvalidDataException($"{source}: {string.Join("; ", problems)}");
        return c;
    }
}
