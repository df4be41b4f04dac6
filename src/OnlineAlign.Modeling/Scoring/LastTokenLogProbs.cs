using OnlineAlign.Modeling.Generation;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Scoring;

/// <summary>
/// Log-probabilities of a few chosen tokens (a judge's score digits) right after each row, for rows built as
/// template + question + response + instruction: every token is computed once.
/// <list type="bullet">
/// <item>the prefix common to all rows (a judge's rubric) once, its keys and values copied to every group;</item>
/// <item>within a group (one question's responses), the group's common prefix once, right-aligned after it;</item>
/// <item>each row's own tail after its group's cached keys and values.</item>
/// </list>
/// Pad columns are masked and positions count real tokens, so each row's result is a plain forward pass over
/// that row alone up to float rounding (tested within 1e-4).
/// </summary>
public static class LastTokenLogProbs
{
    /// <param name="rows">token ids of each row, at least one each</param>
    /// <param name="groupSizes">consecutive rows forming a group (their common prefix is computed once), summing to rows.Count</param>
    /// <param name="tokenIds">the tokens whose log-probs are returned, [row][k]</param>
    /// <param name="maxRows">most rows in one forward (bounds the KV cache's memory)</param>
    /// <param name="only">score only the chunks holding a row of this range (a shard); the others' results stay null. The
    /// prefix all rows share and the cache's size are still the whole list's, so a row gets the numbers it gets unsharded.</param>
    public static float[][] Score(DecoderLM model, IReadOnlyList<int[]> rows, IReadOnlyList<int> groupSizes, IReadOnlyList<int> tokenIds,
        int maxRows = 32, int padTokenId = 0, CancellationToken cancellationToken = default, Range? only = null)
    {
        if (rows.Any(r => r.Length == 0)) throw new ArgumentException("every row needs at least one token");
        if (groupSizes.Any(n => n < 1) || groupSizes.Sum() != rows.Count)
            throw new ArgumentException($"group sizes ({string.Join(", ", groupSizes)}) must be positive and sum to the {rows.Count} rows");
        if (maxRows < 1) throw new ArgumentException($"maxRows must be at least 1, got {maxRows}");
        var result = new float[rows.Count][];
        if (rows.Count == 0) return result;
        var groups = Groups(rows, groupSizes, maxRows);
        int shared = TextGenerator.SharedPrefix(rows);
        // A group's own prefix after the shared one, and each row's tail after its group's: both bound the cache.
        int groupWidth = groups.Max(g => g.Prefix - shared), tailWidth = groups.Max(g => g.Rows.Max(r => rows[r].Length - g.Prefix));
        long capacity = shared + groupWidth + tailWidth;
        var device = model.Device;

        using var noGrad = no_grad();
        using var fused = model.FusedProjections();
        using var scope = NewDisposeScope();
        var wanted = tensor(tokenIds.Select(x => (long)x).ToArray(), device: device);
        using var common = new KvCache(model.Config, 1, capacity, model.DType, device);
        if (shared > 0) model.Hidden(tensor(rows[0].Take(shared).Select(x => (long)x).ToArray(), [1, shared]).to(device), cache: common);

        foreach (var chunk in Chunks(groups, maxRows))
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var chunkScope = NewDisposeScope();
            var members = chunk.SelectMany(g => g.Rows).ToList();
            if (only is { } range && !members.Any(m => m >= range.Start.GetOffset(rows.Count) && m < range.End.GetOffset(rows.Count))) continue;
            var owners = chunk.SelectMany(g => g.Rows.Select(_ => g)).ToList();   // each member's group
            int width = chunk.Max(g => g.Prefix - shared);

            // Each group's own prefix, right-aligned at shared + width (pads between, masked), as the engine prefills prompts.
            var prefixes = chunk.Select(g => rows[g.Rows[0]][..g.Prefix]).ToList();
            var valid = TextGenerator.Valid(prefixes, shared, shared + width, capacity).to(device);
            var groupIds = full(chunk.Count, Math.Max(1, width), (long)padTokenId, ScalarType.Int64);
            for (int g = 0; g < chunk.Count; g++)
            {
                int own = chunk[g].Prefix - shared;
                if (own > 0) groupIds[g].narrow(0, width - own, own).copy_(tensor(prefixes[g][shared..].Select(x => (long)x).ToArray()));
            }
            using var groupCache = common.Select(zeros(chunk.Count, ScalarType.Int64, device: device));
            if (width > 0)
            {
                var positions = (valid.narrow(1, 0, shared + width).to(ScalarType.Int64).cumsum(1) - 1).clamp_min(0).narrow(1, shared, width);
                model.Hidden(groupIds.to(device), positions, TextGenerator.AttentionMask(valid, shared, width), groupCache);
            }

            // Each row's tail after its group's keys and values, left-aligned (a pad after a tail is seen only by later pads).
            int tail = members.Select((r, b) => rows[r].Length - owners[b].Prefix).Max();
            var groupOfRow = tensor(chunk.SelectMany((g, i) => g.Rows.Select(_ => (long)i)).ToArray(), device: device);
            using var rowCache = groupCache.Select(groupOfRow);
            var tailIds = full(members.Count, tail, (long)padTokenId, ScalarType.Int64);
            var tailPositions = zeros(members.Count, tail, ScalarType.Int64);
            var last = new long[members.Count];
            for (int b = 0; b < members.Count; b++)
            {
                int[] row = rows[members[b]];
                int from = owners[b].Prefix;
                tailIds[b].narrow(0, 0, row.Length - from).copy_(tensor(row[from..].Select(x => (long)x).ToArray()));
                tailPositions[b].copy_(arange(from, from + tail, dtype: ScalarType.Int64));
                last[b] = b * tail + row.Length - from - 1;
            }
            var hidden = model.Hidden(tailIds.to(device), tailPositions.to(device),
                TextGenerator.AttentionMask(valid.index_select(0, groupOfRow), shared + width, tail), rowCache);
            var logits = model.Logits(hidden.reshape(-1, hidden.shape[^1]).index_select(0, tensor(last, device: device)));
            var picked = logits.to(ScalarType.Float32).log_softmax(-1).index_select(1, wanted).cpu().data<float>().ToArray();
            for (int b = 0; b < members.Count; b++) result[members[b]] = picked.AsSpan(b * tokenIds.Count, tokenIds.Count).ToArray();
        }
        return result;
    }

    /// <summary>Rows of a group, and how many of their first tokens they share (each keeps at least one of its own).</summary>
    private sealed record Group(List<int> Rows, int Prefix);

    /// <summary>The caller's groups, split where one has more than maxRows rows, with each part's common prefix.</summary>
    private static List<Group> Groups(IReadOnlyList<int[]> rows, IReadOnlyList<int> sizes, int maxRows)
    {
        var groups = new List<Group>();
        int start = 0;
        foreach (int size in sizes)
        {
            for (int from = start; from < start + size; from += maxRows)
            {
                var members = Enumerable.Range(from, Math.Min(maxRows, start + size - from)).ToList();
                int prefix = members.Min(r => rows[r].Length) - 1;
                for (int i = 0; i < prefix; i++)
                    if (members.Any(r => rows[r][i] != rows[members[0]][i])) { prefix = i; break; }
                groups.Add(new Group(members, prefix));
            }
            start += size;
        }
        return groups;
    }

    /// <summary>Whole groups, as many as fit in maxRows rows.</summary>
    private static IEnumerable<List<Group>> Chunks(List<Group> groups, int maxRows)
    {
        var chunk = new List<Group>();
        int count = 0;
        foreach (var g in groups)
        {
            if (count + g.Rows.Count > maxRows && chunk.Count > 0) { yield return chunk; chunk = []; count = 0; }
            chunk.Add(g);
            count += g.Rows.Count;
        }
        if (chunk.Count > 0) yield return chunk;
    }
}
