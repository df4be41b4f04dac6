using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Generation;

/// <summary>
/// Picks next tokens from logits [B, V]: greedy, or temperature + top-k + top-p sampling by inverse CDF
/// with one uniform draw per row. The draws come from per-row CPU generators, so a row's samples depend
/// only on its own seed: the same prompt gives the same response whatever batch or replica it runs in.
/// (TorchSharp 0.107 creates CPU generators even when asked for a CUDA one, so device-side multinomial
/// with a generator fails on CUDA; B uniforms per step cost one tiny host-to-device copy.)
/// </summary>
public static class Sampler
{
    public static Tensor Next(Tensor logits, SamplingOptions options, Generator[]? rowGenerators)
    {
        if (options.Greedy) return logits.argmax(-1);
        if (rowGenerators is null || rowGenerators.Length != logits.shape[0])
            throw new ArgumentException("sampling needs one generator per row");
        using var scope = NewDisposeScope();
        var probs = Filtered(logits, options).softmax(-1);
        var draws = rowGenerators.Select(g => rand(1, generator: g).item<float>()).ToArray();
        var u = tensor(draws, device: logits.device).unsqueeze(-1);
        var cdf = probs.cumsum(-1);
        // The sampled index is the number of CDF entries strictly below u * total.
        var index = (cdf < u * cdf.narrow(-1, cdf.shape[^1] - 1, 1)).sum(-1).clamp_max(probs.shape[^1] - 1);
        return index.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Rows with their own temperature and top_p: the rows sharing a setting are picked together by the one-setting path
    /// above, so a row's numbers are those it gets in a batch of its own setting (the row-wise operations never mix rows)
    /// and never depend on which other settings share the batch. <paramref name="rows"/> null: the one-setting path.
    /// </summary>
    public static Tensor Next(Tensor logits, SamplingOptions options, Generator[]? rowGenerators, IReadOnlyList<RowSampling>? rows)
    {
        if (rows is null) return Next(logits, options, rowGenerators);
        if (rows.Count != logits.shape[0]) throw new ArgumentException($"{rows.Count} row settings for {logits.shape[0]} rows");
        var groups = Enumerable.Range(0, rows.Count).GroupBy(i => rows[i].Greedy ? new RowSampling(0, 1) : rows[i]).ToList();
        if (groups.Count == 1)
            return Next(logits, options with { Temperature = groups[0].Key.Temperature, TopP = groups[0].Key.TopP }, rowGenerators);
        using var scope = NewDisposeScope();
        var picked = zeros(rows.Count, ScalarType.Int64, device: logits.device);
        foreach (var group in groups)
        {
            var index = tensor(group.Select(i => (long)i).ToArray(), device: logits.device);
            var generators = group.Key.Greedy ? null : group.Select(i => rowGenerators![i]).ToArray();
            var settings = options with { Temperature = group.Key.Temperature, TopP = group.Key.TopP };
            picked.index_copy_(0, index, Next(logits.index_select(0, index), settings, generators));
        }
        return picked.MoveToOuterDisposeScope();
    }

    /// <summary>Tempered float32 logits with top-k and top-p tails set to -inf.</summary>
    private static Tensor Filtered(Tensor logits, SamplingOptions options)
    {
        var scaled = logits.to(ScalarType.Float32) / options.Temperature;
        if (options.TopK > 0 && options.TopK < scaled.shape[^1])
        {
            var kth = scaled.topk(options.TopK, dim: -1).values.narrow(-1, options.TopK - 1, 1);
            scaled = scaled.masked_fill(scaled < kth, double.NegativeInfinity);
        }
        if (options.TopP < 1.0)
        {
            var (sorted, order) = scaled.sort(-1, descending: true);
            var sortedProbs = sorted.softmax(-1);
            // Drop a token once the tokens ranked above it already cover top_p (the first always stays).
            var remove = (sortedProbs.cumsum(-1) - sortedProbs) > options.TopP;
            scaled = scaled.masked_fill(zeros_like(remove).scatter(-1, order, remove), double.NegativeInfinity);
        }
        return scaled;
    }
}
