namespace OnlineAlign.Modeling.Checkpoints;

/// <summary>
/// The tensors a config's decoder holds, by Hugging Face name and shape, computed from the config alone: a folder's
/// safetensors headers are compared with them before anything is allocated, so a checkpoint that does not match its
/// config is refused by name instead of after the model was built. Mirrors DecoderLM's modules (a test compares the
/// two for each form: Llama, Qwen2's q/k/v biases, tied embeddings, Qwen3's q/k norms, Gemma 3's four norms per layer).
/// </summary>
public static class CheckpointShapes
{
    public static Dictionary<string, long[]> Expected(ModelConfig c)
    {
        long h = c.HiddenSize, q = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim, m = c.IntermediateSize;
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal) { ["model.embed_tokens.weight"] = [c.VocabSize, h], ["model.norm.weight"] = [h] };
        if (!c.TieWordEmbeddings) shapes["lm_head.weight"] = [c.VocabSize, h];
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"model.layers.{i}.";
            shapes[p + "input_layernorm.weight"] = [h];
            shapes[p + "post_attention_layernorm.weight"] = [h];
            if (c.GemmaNorms)
            {
                shapes[p + "pre_feedforward_layernorm.weight"] = [h];
                shapes[p + "post_feedforward_layernorm.weight"] = [h];
            }
            if (c.QkNorm)
            {
                shapes[p + "self_attn.q_norm.weight"] = [c.HeadDim];
                shapes[p + "self_attn.k_norm.weight"] = [c.HeadDim];
            }
            shapes[p + "self_attn.q_proj.weight"] = [q, h];
            shapes[p + "self_attn.k_proj.weight"] = [kv, h];
            shapes[p + "self_attn.v_proj.weight"] = [kv, h];
            shapes[p + "self_attn.o_proj.weight"] = [h, q];
            if (c.AttentionBias)
            {
                shapes[p + "self_attn.q_proj.bias"] = [q];
                shapes[p + "self_attn.k_proj.bias"] = [kv];
                shapes[p + "self_attn.v_proj.bias"] = [kv];
            }
            shapes[p + "mlp.gate_proj.weight"] = [m, h];
            shapes[p + "mlp.up_proj.weight"] = [m, h];
            shapes[p + "mlp.down_proj.weight"] = [h, m];
        }
        return shapes;
    }

    /// <summary>Names a checkpoint may hold that the model does not load: transformers keeps rotary buffers, and may keep a tied head.</summary>
    public static bool Tolerated(ModelConfig c, string name) =>
        name.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal) || (name == "lm_head.weight" && c.TieWordEmbeddings);
}
