using OnlineAlign.Modeling.Generation;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Scoring;

/// <summary>
/// Scores rows whose prompts repeat (a judge's N responses to one prompt, a pair's chosen and rejected) with each
/// distinct prompt computed once: its keys and values are copied to its responses, which then run on their own.
/// Prompts are right-aligned (pads masked, positions counting real tokens), as the generation engine prefills them,
/// so a response's log-probs are those of the plain pass up to float rounding (tested within 1e-4).
/// </summary>
internal static class SharedPromptScoring
{
    /// <summary>
    /// Per-token log-probs of each row's response, or null where no prompt repeats (the plain pass is then as good).
    /// Call without gradients, inside a dispose scope.
    /// </summary>
    public static float[][]? Score(DecoderLM model, IReadOnlyList<PromptResponse> rows, int padTokenId)
    {
        if (rows.Any(r => r.Prompt.Length == 0)) throw new ArgumentException("every prompt needs at least one token");
        var (distinct, source) = TextGenerator.DistinctPrompts(rows.Select(r => r.Prompt).ToList());
        if (distinct.Count == rows.Count) return null;
        var device = model.Device;
        int promptLength = distinct.Max(p => p.Length), responseLength = Math.Max(1, rows.Max(r => r.Response.Length));
        long capacity = promptLength + responseLength;

        // The distinct prompts, right-aligned at promptLength; every response column counts as valid (a pad after a
        // response is only ever seen by later pads, whose outputs are not read).
        var valid = TextGenerator.Valid(distinct, shared: 0, promptLength, capacity).to(device);
        var ids = full(distinct.Count, promptLength, (long)padTokenId, ScalarType.Int64);
        for (int u = 0; u < distinct.Count; u++)
            ids[u].narrow(0, promptLength - distinct[u].Length, distinct[u].Length).copy_(tensor(distinct[u].Select(x => (long)x).ToArray()));
        var positions = (valid.narrow(1, 0, promptLength).to(ScalarType.Int64).cumsum(1) - 1).clamp_min(0);
        using var cache = new KvCache(model.Config, distinct.Count, capacity, model.DType, device);
        var promptHidden = model.Hidden(ids.to(device), positions, TextGenerator.AttentionMask(valid, 0, promptLength), cache);
        var lastPromptHidden = promptHidden.narrow(1, promptLength - 1, 1);                       // predicts each response's first token

        // Each row's responses after its prompt's cached keys and values.
        var rowIndex = tensor(source, device: device);
        using var rowCache = cache.Select(rowIndex);
        var response = full(rows.Count, responseLength, (long)padTokenId, ScalarType.Int64);
        var responsePositions = zeros(rows.Count, responseLength, ScalarType.Int64);
        for (int b = 0; b < rows.Count; b++)
        {
            if (rows[b].Response.Length > 0) response[b].narrow(0, 0, rows[b].Response.Length).copy_(tensor(rows[b].Response.Select(x => (long)x).ToArray()));
            responsePositions[b].copy_(arange(rows[b].Prompt.Length, rows[b].Prompt.Length + responseLength, dtype: ScalarType.Int64));
        }
        var responseHidden = model.Hidden(response.to(device), responsePositions.to(device),
            TextGenerator.AttentionMask(valid.index_select(0, rowIndex), promptLength, responseLength), rowCache);

        // Hidden state t predicts response token t: the prompt's last for t = 0, the response's t-1 after it.
        var predictors = cat([lastPromptHidden.index_select(0, rowIndex), responseHidden.narrow(1, 0, responseLength - 1)], 1);
        var targets = new List<long>();
        var at = new List<long>();
        for (int b = 0; b < rows.Count; b++)
            for (int i = 0; i < rows[b].Response.Length; i++) { at.Add(b * responseLength + i); targets.Add(rows[b].Response[i]); }
        var scores = new float[rows.Count][];
        if (at.Count > 0)
        {
            var logits = model.Logits(predictors.reshape(-1, predictors.shape[^1]).index_select(0, tensor(at.ToArray(), device: device)));
            var logProbs = logits.to(ScalarType.Float32).log_softmax(-1).gather(-1, tensor(targets.ToArray(), device: device).unsqueeze(-1)).squeeze(-1);
            var data = logProbs.cpu().data<float>().ToArray();
            int k = 0;
            for (int b = 0; b < rows.Count; b++) { scores[b] = data.AsSpan(k, rows[b].Response.Length).ToArray(); k += rows[b].Response.Length; }
        }
        for (int b = 0; b < rows.Count; b++) scores[b] ??= [];
        return scores;
    }
}
