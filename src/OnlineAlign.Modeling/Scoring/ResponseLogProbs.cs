using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Scoring;

/// <summary>A prompt and a response to score under a model.</summary>
public sealed record PromptResponse(int[] Prompt, int[] Response);

/// <summary>Per-token log-probs of one response, with their sum and mean.</summary>
public sealed record ResponseScore(float[] TokenLogProbs)
{
    public double Sum => TokenLogProbs.Sum(x => (double)x);
    public double Mean => TokenLogProbs.Length == 0 ? 0 : Sum / TokenLogProbs.Length;
}

/// <summary>
/// log p(response | prompt) under a model, token by token. Rows are right-padded (prompt, response, pad),
/// so plain causal attention is exact and the fast fused kernels apply; prompt and padding are masked out.
/// </summary>
public static class ResponseLogProbs
{
    /// <summary>Per-token log-probs [B, L-1] (zero outside responses) and the response mask [B, L-1], with gradients.</summary>
    public static (Tensor TokenLogProbs, Tensor Mask) Forward(DecoderLM model, IReadOnlyList<PromptResponse> rows, int padTokenId = 0)
    {
        var (ids, mask) = Batch(rows, padTokenId, model.Device);
        using var scope = NewDisposeScope();
        long width = ids.shape[1] - 1;
        var hidden = model.Hidden(ids.narrow(1, 0, width));
        // Only response targets need logits. The LM head and the float32 log-softmax over the vocabulary make
        // the step's largest tensors, so prompt and padding positions skip them; the positions are known here
        // on the host, so selecting them costs no device sync.
        var positions = tensor(ResponseTargetPositions(rows, width), device: model.Device);
        var targets = ids.narrow(1, 1, width).reshape(-1).index_select(0, positions);
        var logits = model.Logits(hidden.reshape(-1, hidden.shape[^1]).index_select(0, positions));   // [M, V]
        // Log-softmax in float32 even when the model runs in bf16: sums of many log-probs need the precision.
        var logProbs = logits.to(ScalarType.Float32).log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
        var perToken = zeros(rows.Count * width, ScalarType.Float32, model.Device).index_copy(0, positions, logProbs);
        return (perToken.view(rows.Count, width).MoveToOuterDisposeScope(), mask); // mask already lives in the caller's scope
    }

    /// <summary>Flat indices into [B, L-1] of the targets that are response tokens (target t is predicted at t-1).</summary>
    private static long[] ResponseTargetPositions(IReadOnlyList<PromptResponse> rows, long width)
    {
        var positions = new long[rows.Sum(r => r.Response.Length)];
        int n = 0;
        for (int b = 0; b < rows.Count; b++)
            for (int i = 0; i < rows[b].Response.Length; i++)
                positions[n++] = b * width + rows[b].Prompt.Length - 1 + i;
        return positions;
    }

    /// <summary>
    /// Scores without gradients, <paramref name="chunkSize"/> rows at a time so memory stays bounded. Rows of a chunk
    /// that share a prompt (keep them adjacent) compute it once (<see cref="SharedPromptScoring"/>).
    /// </summary>
    /// <param name="sharePrompts">false: every row computes its own prompt (the plain pass, kept for comparison)</param>
    public static IReadOnlyList<ResponseScore> Score(DecoderLM model, IReadOnlyList<PromptResponse> rows, int chunkSize = 16, int padTokenId = 0,
        CancellationToken cancellationToken = default, bool sharePrompts = true)
    {
        var results = new List<ResponseScore>(rows.Count);
        using var noGrad = no_grad();
        for (int start = 0; start < rows.Count; start += chunkSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var chunk = rows.Skip(start).Take(chunkSize).ToList();
            if (sharePrompts && SharedPromptScoring.Score(model, chunk, padTokenId) is { } shared)
            {
                results.AddRange(shared.Select(s => new ResponseScore(s)));
                continue;
            }
            var (logProbs, _) = Forward(model, chunk, padTokenId);
            var data = logProbs.cpu().data<float>().ToArray();
            long width = logProbs.shape[1];
            for (int b = 0; b < chunk.Count; b++)
            {
                int from = chunk[b].Prompt.Length - 1;
                results.Add(new ResponseScore(data.AsSpan((int)(b * width + from), chunk[b].Response.Length).ToArray()));
            }
        }
        return results;
    }

    /// <summary>Right-padded ids [B, L] and the mask [B, L-1] of target positions that are response tokens.</summary>
    public static (Tensor Ids, Tensor Mask) Batch(IReadOnlyList<PromptResponse> rows, int padTokenId, Device device)
    {
        if (rows.Any(r => r.Prompt.Length == 0)) throw new ArgumentException("every prompt needs at least one token");
        int length = Math.Max(2, rows.Max(r => r.Prompt.Length + r.Response.Length));
        var ids = new long[rows.Count * length];
        var mask = new float[rows.Count * (length - 1)];
        Array.Fill(ids, padTokenId);
        for (int b = 0; b < rows.Count; b++)
        {
            var (prompt, response) = (rows[b].Prompt, rows[b].Response);
            for (int i = 0; i < prompt.Length; i++) ids[b * length + i] = prompt[i];
            for (int i = 0; i < response.Length; i++)
            {
                ids[b * length + prompt.Length + i] = response[i];
                mask[b * (length - 1) + prompt.Length - 1 + i] = 1f;   // target at t is predicted from position t-1
            }
        }
        return (tensor(ids, [rows.Count, length]).to(device), tensor(mask, [rows.Count, length - 1]).to(device));
    }
}
