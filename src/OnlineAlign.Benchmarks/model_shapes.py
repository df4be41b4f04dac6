"""The benchmark shapes of ModelShapes.cs as transformers configs, for the PyTorch counterparts (random weights)."""
from transformers import Qwen2Config


def qwen2_0_5b(**overrides):
    """Qwen2-0.5B: 494M parameters, tied embeddings, GQA 14/2, SDPA attention."""
    fields = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                  num_attention_heads=14, num_key_value_heads=2, head_dim=64, rms_norm_eps=1e-6,
                  rope_theta=1e6, max_position_embeddings=32768, tie_word_embeddings=True,
                  eos_token_id=151643, pad_token_id=151643)
    fields.update(overrides)
    cfg = Qwen2Config(**fields)
    cfg._attn_implementation = "sdpa"
    return cfg
