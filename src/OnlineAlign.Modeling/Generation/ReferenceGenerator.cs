using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Generation;

/// <summary>
/// The plain static-batch engine: every row prefills its own prompt and decodes until the longest row ends.
/// Kept as the oracle the round engine (TextGenerator) must match token for token, and as the benchmark
/// baseline. Batched generation with left padding, an attention mask and a preallocated KV cache. Synchronous:
/// call it on the model's own thread (TorchSharp dispose scopes are thread-local).
/// </summary>
public static class ReferenceGenerator
{
    /// <param name="rowSeeds">One sampling seed per prompt (default: options.Seed + row index). A row's
    /// output depends only on its prompt and seed, not on the rest of the batch.</param>
    /// <param name="maxBatch">Most prompts decoded together; more are done in consecutive batches, which keeps
    /// the KV cache's memory bounded and gives the same rows.</param>
    public static IReadOnlyList<Continuation> Generate(DecoderLM model, IReadOnlyList<int[]> prompts, SamplingOptions options,
        IReadOnlyList<ulong>? rowSeeds = null, int maxBatch = int.MaxValue, CancellationToken cancellationToken = default)
    {
        options.Validate();
        if (maxBatch < 1) throw new ArgumentException($"maxBatch must be at least 1, got {maxBatch}");
        if (prompts.Count == 0) return [];
        if (rowSeeds is not null && rowSeeds.Count != prompts.Count)
            throw new ArgumentException($"{rowSeeds.Count} row seeds for {prompts.Count} prompts");
        if (prompts.Count > maxBatch)
        {
            var seeds = rowSeeds ?? Enumerable.Range(0, prompts.Count).Select(i => options.Seed + (ulong)i).ToList();
            return prompts.Chunk(maxBatch).SelectMany((chunk, k) =>
                Generate(model, chunk, options, seeds.Skip(k * maxBatch).Take(chunk.Length).ToList(), cancellationToken: cancellationToken)).ToList();
        }
        var (promptLength, capacity) = TextGenerator.Capacity(model, prompts, options);
        var device = model.Device;
        int batch = prompts.Count;

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var generators = options.Greedy ? null
            : Enumerable.Range(0, batch).Select(i => new Generator(rowSeeds?[i] ?? options.Seed + (ulong)i)).ToArray();
        using var cache = new KvCache(model.Config, batch, capacity, model.DType, device);
        using var fused = model.FusedProjections();

        // Left padding: every prompt ends at the same column, so new tokens line up.
        var ids = full(batch, promptLength, (long)options.PadTokenId, ScalarType.Int64);
        var valid = zeros(batch, capacity, ScalarType.Bool);
        for (int b = 0; b < batch; b++)
        {
            int pad = promptLength - prompts[b].Length;
            ids[b].narrow(0, pad, prompts[b].Length).copy_(tensor(prompts[b].Select(x => (long)x).ToArray()));
            valid[b].narrow(0, pad, capacity - pad).fill_(true);
        }
        ids = ids.to(device);
        valid = valid.to(device);
        // Positions count real tokens only, so a padded prompt sees the same positions as alone.
        var positions = (valid.narrow(1, 0, promptLength).to(ScalarType.Int64).cumsum(1) - 1).clamp_min(0);

        var stop = options.StopTokenIds.Count > 0 ? tensor(options.StopTokenIds.Select(x => (long)x).ToArray(), device: device) : null;
        var finished = zeros(batch, ScalarType.Bool, device);
        var newTokens = new List<Tensor>();
        var newLogProbs = new List<Tensor>();

        var hidden = model.Hidden(ids, positions, TextGenerator.AttentionMask(valid, 0, promptLength), cache);
        var lastLogits = model.Logits(hidden.narrow(1, promptLength - 1, 1)).squeeze(1);
        var nextPosition = positions.narrow(1, promptLength - 1, 1) + 1;
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var stepScope = NewDisposeScope();
            var token = Sampler.Next(lastLogits, options, generators);
            var logProb = lastLogits.to(ScalarType.Float32).log_softmax(-1).gather(-1, token.unsqueeze(-1)).squeeze(-1);
            token = token.masked_fill(finished, options.PadTokenId);
            newTokens.Add(token.MoveToOuterDisposeScope());
            newLogProbs.Add(logProb.masked_fill(finished, 0).MoveToOuterDisposeScope());
            if (stop is not null) finished = (finished | isin(token, stop)).MoveToOuterDisposeScope();
            // One host sync per step: stop early once every sequence has ended.
            if (step == options.MaxNewTokens - 1 || (stop is not null && finished.all().item<bool>())) break;

            long column = promptLength + step;
            // Every column from a row's first prompt token on is valid, the new one included, and a single
            // query is causal by construction: the step's mask is a view of the valid columns.
            var stepMask = valid.narrow(1, 0, column + 1).unsqueeze(1).unsqueeze(1);
            var stepHidden = model.Hidden(token.unsqueeze(1), nextPosition, stepMask, cache);
            lastLogits = model.Logits(stepHidden).squeeze(1).MoveToOuterDisposeScope();
            nextPosition = (nextPosition + 1).MoveToOuterDisposeScope();
        }

        foreach (var g in generators ?? []) g.Dispose();
        var tokens = stack(newTokens, 1).cpu();
        var logProbs = stack(newLogProbs, 1).cpu();
        var tokenData = tokens.data<long>().ToArray();
        var logProbData = logProbs.data<float>().ToArray();
        int steps = (int)tokens.shape[1];
        var stopSet = options.StopTokenIds.ToHashSet();
        var results = new List<Continuation>(batch);
        for (int b = 0; b < batch; b++)
        {
            var seq = new List<int>();
            var lps = new List<float>();
            bool stopped = false;
            for (int s = 0; s < steps; s++)
            {
                int t = (int)tokenData[b * steps + s];
                seq.Add(t);
                lps.Add(logProbData[b * steps + s]);
                if (stopSet.Contains(t)) { stopped = true; break; }
            }
            results.Add(new Continuation(seq.ToArray(), lps.ToArray(), stopped));
        }
        return results;
    }
}
