using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Generation;

/// <summary>What a generation call did, for benchmarks: prefill work done and saved, decode work, compactions.</summary>
public sealed class GenerationStats
{
    /// <summary>Prompt tokens prefilled (distinct prompts only).</summary>
    public long PrefillTokens { get; set; }
    /// <summary>Prompt tokens not prefilled because another row of the batch had the same prompt.</summary>
    public long PrefillTokensSaved { get; set; }
    /// <summary>Rows summed over decode steps: the decode work actually done.</summary>
    public long DecodeRowSteps { get; set; }
    /// <summary>Times finished rows were dropped from the batch (and its KV cache).</summary>
    public long Compactions { get; set; }
    public long NewTokens { get; set; }
}

/// <summary>
/// The round engine: batched generation with left padding, an attention mask and a preallocated KV cache, built
/// for a round's shape (N samples of each prompt, responses of very different lengths):
/// <list type="bullet">
/// <item>each distinct prompt of a batch is prefilled once, and its KV cache and last logits are copied to every
/// row that samples from it; a prefix common to the batch's prompts (a judge's rubric) is prefilled once for all;</item>
/// <item>finished rows leave the batch: once a quarter of the rows still decoding have stopped, the batch and its
/// KV cache are compacted to the rows that go on, so no step is spent on rows whose output is fixed.</item>
/// </list>
/// A row's output depends only on its prompt and seed, never on the other rows: it equals
/// <see cref="ReferenceGenerator"/>'s token for token (tested). Synchronous: call it on the model's own thread
/// (TorchSharp dispose scopes are thread-local).
/// </summary>
public static class TextGenerator
{
    /// <param name="rowSeeds">One sampling seed per prompt (default: options.Seed + row index).</param>
    /// <param name="maxBatch">Most prompts decoded together; more are done in consecutive batches, which keeps
    /// the KV cache's memory bounded and gives the same rows. Rows sharing a prompt should be adjacent.</param>
    /// <param name="rowMaxNewTokens">Each row's own token limit, at most options.MaxNewTokens (default: that for every row);
    /// a row's tokens are the first ones it would give with a higher limit.</param>
    /// <param name="onToken">Called on this thread with (row, token) as each new token is picked, for a server that streams
    /// them; it may cancel <paramref name="cancellationToken"/> to end the call early.</param>
    /// <param name="keepRow">Called on this thread with (row, token) as each new token is picked; false ends that row there
    /// (a client's stop sequence, a client gone), as a stop token would, without touching the other rows. The row's
    /// continuation then ends with that token, Stopped false.</param>
    /// <param name="rowSampling">Each row's own temperature and top_p (a server batching requests that ask for different
    /// ones); default: options' for every row. A row's tokens are those a call with its setting for all rows gives it.</param>
    public static IReadOnlyList<Continuation> Generate(DecoderLM model, IReadOnlyList<int[]> prompts, SamplingOptions options,
        IReadOnlyList<ulong>? rowSeeds = null, int maxBatch = int.MaxValue, CancellationToken cancellationToken = default,
        GenerationStats? stats = null, IReadOnlyList<int>? rowMaxNewTokens = null, Action<int, int>? onToken = null,
        IReadOnlyList<RowSampling>? rowSampling = null, Func<int, int, bool>? keepRow = null)
    {
        options.Validate();
        if (maxBatch < 1) throw new ArgumentException($"maxBatch must be at least 1, got {maxBatch}");
        if (prompts.Count == 0) return [];
        if (rowSeeds is not null && rowSeeds.Count != prompts.Count)
            throw new ArgumentException($"{rowSeeds.Count} row seeds for {prompts.Count} prompts");
        if (rowMaxNewTokens is not null && (rowMaxNewTokens.Count != prompts.Count || rowMaxNewTokens.Any(n => n < 1 || n > options.MaxNewTokens)))
            throw new ArgumentException($"row token limits must be one per prompt ({prompts.Count}), each from 1 to max_new_tokens ({options.MaxNewTokens})");
        if (rowSampling is not null && rowSampling.Count != prompts.Count)
            throw new ArgumentException($"{rowSampling.Count} row sampling settings for {prompts.Count} prompts");
        for (int i = 0; i < (rowSampling?.Count ?? 0); i++) rowSampling![i].Validate(i);
        var seeds = rowSeeds ?? Enumerable.Range(0, prompts.Count).Select(i => options.Seed + (ulong)i).ToList();
        var limits = rowMaxNewTokens ?? Enumerable.Repeat(options.MaxNewTokens, prompts.Count).ToList();
        return prompts.Chunk(maxBatch).SelectMany((chunk, k) =>
        {
            var batchLimits = limits.Skip(k * maxBatch).Take(chunk.Length).ToList();
            // The KV cache holds this batch's longest allowance only.
            return Batch(model, chunk, options with { MaxNewTokens = batchLimits.Max() }, seeds.Skip(k * maxBatch).Take(chunk.Length).ToList(),
                batchLimits, rowSampling?.Skip(k * maxBatch).Take(chunk.Length).ToList(), stats,
                onToken is null ? null : (row, token) => onToken(k * maxBatch + row, token),
                keepRow is null ? null : (row, token) => keepRow(k * maxBatch + row, token), cancellationToken);
        }).ToList();
    }

    private static List<Continuation> Batch(DecoderLM model, int[][] prompts, SamplingOptions options, IReadOnlyList<ulong> seeds,
        List<int> limits, List<RowSampling>? sampling, GenerationStats? stats, Action<int, int>? onToken,
        Func<int, int, bool>? keepRow, CancellationToken cancellationToken)
    {
        var (promptLength, capacity) = Capacity(model, prompts, options, limits);
        var device = model.Device;
        int batch = prompts.Length;

        var (distinct, source) = DistinctPrompts(prompts);
        if (stats is not null)
        {
            stats.PrefillTokens += distinct.Sum(p => (long)p.Length);
            stats.PrefillTokensSaved += prompts.Sum(p => (long)p.Length) - distinct.Sum(p => (long)p.Length);
        }

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var generators = options.Greedy && sampling is null ? null : seeds.Select(s => new Generator(s)).ToArray();
        using var fused = model.FusedProjections();

        // The distinct prompts' common prefix (a judge's rubric, a chat template's system prompt) is prefilled once
        // for all of them; each prompt's own tokens are right-aligned after it, padded in between. Pad columns are
        // masked and positions count real tokens only, so every row computes what it would alone.
        int shared = SharedPrefix(distinct);
        if (stats is not null) { stats.PrefillTokens -= shared * (distinct.Count - 1L); stats.PrefillTokensSaved += shared * (distinct.Count - 1L); }
        var valid = Valid(distinct, shared, promptLength, capacity).to(device);
        var ids = full(distinct.Count, promptLength, (long)options.PadTokenId, ScalarType.Int64);
        for (int u = 0; u < distinct.Count; u++)
        {
            if (shared > 0) ids[u].narrow(0, 0, shared).copy_(tensor(distinct[u].Take(shared).Select(x => (long)x).ToArray()));
            ids[u].narrow(0, promptLength - (distinct[u].Length - shared), distinct[u].Length - shared)
                .copy_(tensor(distinct[u].Skip(shared).Select(x => (long)x).ToArray()));
        }
        var positions = (valid.narrow(1, 0, promptLength).to(ScalarType.Int64).cumsum(1) - 1).clamp_min(0);
        var lastLogits = Prefill(model, ids.to(device), positions, valid, shared, promptLength, capacity, out var cache);
        var nextPosition = positions.narrow(1, promptLength - 1, 1) + 1;

        // Every row gets its prompt's cache, mask, position and logits.
        var rows = tensor(source, device: device);
        KvCache perRow;
        try { perRow = cache.Select(rows); }
        finally { cache.Dispose(); }
        using var rowCache = perRow;
        valid = valid.index_select(0, rows);
        nextPosition = nextPosition.index_select(0, rows);
        lastLogits = lastLogits.index_select(0, rows);

        var stop = options.StopTokenIds.Count > 0 ? tensor(options.StopTokenIds.Select(x => (long)x).ToArray(), device: device) : null;
        var stopSet = options.StopTokenIds.ToHashSet();
        var tokens = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
        var logProbs = Enumerable.Range(0, batch).Select(_ => new List<float>()).ToArray();
        var stopped = new bool[batch];
        var finished = new bool[batch];   // stopped, or at the row's own limit
        var active = Enumerable.Range(0, batch).ToList();   // original row of each batch row
        var rowGenerators = generators;
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var stepScope = NewDisposeScope();
            var token = Sampler.Next(lastLogits, options, rowGenerators, sampling is null ? null : active.Select(row => sampling[row]).ToList());
            var logProb = lastLogits.to(ScalarType.Float32).log_softmax(-1).gather(-1, token.unsqueeze(-1)).squeeze(-1);
            // One host copy per step: the tokens decide which rows go on.
            var hostTokens = token.cpu().data<long>().ToArray();
            var hostLogProbs = logProb.cpu().data<float>().ToArray();
            if (stats is not null) { stats.DecodeRowSteps += active.Count; stats.NewTokens += active.Count(row => !finished[row]); }
            for (int i = 0; i < active.Count; i++)
            {
                int row = active[i];
                if (finished[row]) continue; // finished earlier, carried until the next compaction
                tokens[row].Add((int)hostTokens[i]);
                logProbs[row].Add(hostLogProbs[i]);
                onToken?.Invoke(row, (int)hostTokens[i]);
                bool goOn = keepRow?.Invoke(row, (int)hostTokens[i]) ?? true;
                if (stopSet.Contains((int)hostTokens[i])) stopped[row] = true;
                finished[row] = stopped[row] || tokens[row].Count >= limits[row] || !goOn;
            }
            if (step == options.MaxNewTokens - 1 || active.All(row => finished[row])) break;

            long column = promptLength + step;
            // Rows that finished are carried (their tokens ignored) until enough have finished to be worth a copy.
            var carried = active.Select((row, i) => (row, i)).Where(x => finished[x.row]).Select(x => x.i).ToList();
            if (carried.Count > 0 && carried.Count * 4 >= active.Count)
            {
                var keep = Enumerable.Range(0, active.Count).Except(carried).ToList();
                var keepIndex = tensor(keep.Select(i => (long)i).ToArray(), device: device);
                rowCache.Keep(keepIndex);
                valid = valid.index_select(0, keepIndex).MoveToOuterDisposeScope();
                nextPosition = nextPosition.index_select(0, keepIndex).MoveToOuterDisposeScope();
                token = token.index_select(0, keepIndex);
                if (rowGenerators is not null) rowGenerators = keep.Select(i => rowGenerators[i]).ToArray();
                active = keep.Select(i => active[i]).ToList();
                if (stats is not null) stats.Compactions++;
            }
            // Every column from a row's first prompt token on is valid, the new one included, and a single
            // query is causal by construction: the step's mask is a view of the valid columns.
            var stepMask = valid.narrow(1, 0, column + 1).unsqueeze(1).unsqueeze(1);
            var stepHidden = model.Hidden(token.unsqueeze(1), nextPosition, stepMask, rowCache);
            lastLogits = model.Logits(stepHidden).squeeze(1).MoveToOuterDisposeScope();
            nextPosition = (nextPosition + 1).MoveToOuterDisposeScope();
        }

        foreach (var g in generators ?? []) g.Dispose();
        return Enumerable.Range(0, batch).Select(b => new Continuation(tokens[b].ToArray(), logProbs[b].ToArray(), stopped[b])).ToList();
    }

    /// <summary>
    /// A batch's longest prompt and the KV cache's length (that prompt and max_new_tokens). Each row's own prompt and token
    /// limit (default: max_new_tokens) are checked against the model's context: positions count a row's real tokens only,
    /// so the cache's columns may outnumber the context when a long prompt and a long reply come from different rows.
    /// </summary>
    internal static (int PromptLength, long Capacity) Capacity(DecoderLM model, IReadOnlyList<int[]> prompts, SamplingOptions options,
        IReadOnlyList<int>? limits = null)
    {
        if (prompts.Any(p => p.Length == 0)) throw new ArgumentException("every prompt needs at least one token");
        int promptLength = prompts.Max(p => p.Length);
        long capacity = promptLength + options.MaxNewTokens;
        int worst = Enumerable.Range(0, prompts.Count).MaxBy(i => prompts[i].Length + (long)(limits?[i] ?? options.MaxNewTokens));
        int worstLimit = limits?[worst] ?? options.MaxNewTokens;
        if (prompts[worst].Length + (long)worstLimit > model.Config.MaxPositions)
            throw new ArgumentException($"prompt ({prompts[worst].Length} tokens) + max_new_tokens ({worstLimit}) exceeds the model's context of " +
                $"{model.Config.MaxPositions}");
        return (promptLength, capacity);
    }

    /// <summary>
    /// The length of the prompts' common prefix worth sharing: each prompt keeps at least one token of its own,
    /// and a short one is not worth a pass of its own.
    /// </summary>
    public static int SharedPrefix(IReadOnlyList<int[]> prompts)
    {
        if (prompts.Count < 2) return 0;
        int length = prompts.Min(p => p.Length) - 1;
        for (int i = 0; i < length; i++)
            if (prompts.Any(p => p[i] != prompts[0][i])) { length = i; break; }
        return length >= MinSharedPrefix ? length : 0;
    }

    private const int MinSharedPrefix = 8;

    /// <summary>The distinct prompts (by tokens), in order of first use, and each row's index among them.</summary>
    internal static (List<int[]> Distinct, long[] Source) DistinctPrompts(IReadOnlyList<int[]> prompts)
    {
        var distinct = new List<int[]>();
        var byContent = new Dictionary<string, int>();
        var source = new long[prompts.Count];
        for (int b = 0; b < prompts.Count; b++)
        {
            string key = string.Join(',', prompts[b]);
            if (!byContent.TryGetValue(key, out int u)) { u = distinct.Count; byContent[key] = u; distinct.Add(prompts[b]); }
            source[b] = u;
        }
        return (distinct, source);
    }

    /// <summary>bool [B, capacity]: the shared prefix's columns, then a row's own tokens right-aligned at promptLength (pads between).</summary>
    internal static Tensor Valid(IReadOnlyList<int[]> prompts, int shared, int promptLength, long capacity)
    {
        var valid = zeros(prompts.Count, capacity, ScalarType.Bool);
        for (int b = 0; b < prompts.Count; b++)
        {
            if (shared > 0) valid[b].narrow(0, 0, shared).fill_(true);
            int start = promptLength - (prompts[b].Length - shared);
            valid[b].narrow(0, start, capacity - start).fill_(true);
        }
        return valid;
    }

    /// <summary>
    /// Prefills the distinct prompts into a cache of their own: the shared prefix once (one row, copied to all),
    /// then every prompt's own tokens. Returns their last logits [U, V].
    /// </summary>
    private static Tensor Prefill(DecoderLM model, Tensor ids, Tensor positions, Tensor valid, int shared, int promptLength, long capacity, out KvCache cache)
    {
        int rows = (int)ids.shape[0];
        if (shared == 0)
        {
            cache = new KvCache(model.Config, rows, capacity, model.DType, model.Device);
            var hidden = model.Hidden(ids, positions, AttentionMask(valid, 0, promptLength), cache);
            return model.Logits(hidden.narrow(1, promptLength - 1, 1)).squeeze(1);
        }
        using (var prefix = new KvCache(model.Config, 1, capacity, model.DType, model.Device))
        {
            model.Hidden(ids.narrow(0, 0, 1).narrow(1, 0, shared), positions.narrow(0, 0, 1).narrow(1, 0, shared), cache: prefix);
            cache = prefix.Select(zeros(rows, ScalarType.Int64, device: model.Device));
        }
        var own = model.Hidden(ids.narrow(1, shared, promptLength - shared), positions.narrow(1, shared, promptLength - shared),
            AttentionMask(valid, shared, promptLength - shared), cache);
        return model.Logits(own.narrow(1, promptLength - shared - 1, 1)).squeeze(1);
    }

    /// <summary>bool [B, 1, T, S]: query columns [start, start+T) attend to valid keys at or before them.</summary>
    internal static Tensor AttentionMask(Tensor valid, long start, long t)
    {
        var causal = DecoderLM.CausalMask(start, t, valid.device);                    // [T, S]
        var keys = valid.narrow(1, 0, start + t).unsqueeze(1);                         // [B, 1, S]
        // A pad query attends to itself, so no row is fully masked (which would make NaNs).
        var self = arange(start, start + t, dtype: ScalarType.Int64, device: valid.device).unsqueeze(1)
                   == arange(0, start + t, dtype: ScalarType.Int64, device: valid.device).unsqueeze(0);
        return ((causal.unsqueeze(0) & keys) | self.unsqueeze(0)).unsqueeze(1);
    }
}
