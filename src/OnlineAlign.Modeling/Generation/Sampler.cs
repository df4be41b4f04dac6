using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Generation;

/// <summary>Picks next tokens from logits [B, V]: greedy, or temperature + top-k + top-p sampling.</summary>
public static class Sampler
{
    public static Tensor Next(Tensor logits, SamplingOptions options, Generator? generator)
    {
        if (options.Greedy) return logits.argmax(-1);
        using var scope = NewDisposeScope();
        var scaled = logits.to(ScalarType.Float32) / options.Temperature;
        if (options.TopK > 0 && options.TopK < scaled.shape[^1])
        {
            var kth = scaled.topk(options.TopK, dim: -1).values.narrow(-1, options.TopK - 1, 1);
            scaled = scaled.masked_fill(scaled < kth, double.NegativeInfinity);
        }
        if (options.TopP < 1.0)
        {
            var (sorted, order) = scaled.sort(-1, descending: true);
            var probs = sorted.softmax(-1);
            // Drop a token once the tokens ranked above it already cover top_p (the first always stays).
            var remove = (probs.cumsum(-1) - probs) > options.TopP;
            var removeInVocabOrder = zeros_like(remove).scatter(-1, order, remove);
            scaled = scaled.masked_fill(removeInVocabOrder, double.NegativeInfinity);
        }
        return scaled.softmax(-1).multinomial(1, generator: generator).squeeze(-1).MoveToOuterDisposeScope();
    }
}
