namespace OnlineAlign.Alignment.Rounds;

/// <summary>
/// How a phase's items (a round's prompts, evaluation prompts, pairs) are cut into contiguous shards, one per replica,
/// and put back together. Cuts fall on the batch boundaries the unsharded phase has, so every batch a shard runs is a
/// batch the unsharded phase would run, with the same rows and the same padding: the numbers cannot depend on the cut.
/// </summary>
public static class ShardPlan
{
    /// <summary>
    /// The fewest items whose rows fill whole batches: with <paramref name="rowsPerItem"/> rows per item, batched
    /// <paramref name="batchRows"/> rows at a time from the first row, a cut after a multiple of this many items is a batch boundary.
    /// </summary>
    public static int Unit(int rowsPerItem, int batchRows)
    {
        if (rowsPerItem < 1 || batchRows < 1) throw new ArgumentException($"rows per item ({rowsPerItem}) and batch rows ({batchRows}) must be at least 1");
        return batchRows / Gcd(batchRows, rowsPerItem);
    }

    /// <summary>The smallest cut unit that is a multiple of every given unit (each phase batches several ways).</summary>
    public static int Combine(params int[] units) => units.Aggregate(1, (a, b) => checked(a / Gcd(a, b) * b));

    /// <summary>
    /// Contiguous item ranges, at most one per replica, each a whole number of units (but the last, which ends with the
    /// items); units are shared out as evenly as contiguity allows. Fewer units than replicas gives fewer shards.
    /// </summary>
    public static List<List<int>> Cut(int items, int replicas, int unit)
    {
        if (items < 0) throw new ArgumentException($"items must not be negative, got {items}");
        if (unit < 1) throw new ArgumentException($"the cut unit must be at least 1, got {unit}");
        int units = (items + unit - 1) / unit;
        int n = Math.Clamp(replicas, 1, Math.Max(1, units));
        return Enumerable.Range(0, n).Select(k =>
        {
            int from = Math.Min(items, (int)((long)k * units / n) * unit), to = Math.Min(items, (int)((long)(k + 1) * units / n) * unit);
            return Enumerable.Range(from, to - from).ToList();
        }).ToList();
    }

    /// <summary>
    /// Puts shards' per-item values back in item order. Every item must come from exactly one shard: a missing or a
    /// duplicated item means a shard was lost or counted twice, and is refused naming the item.
    /// </summary>
    /// <param name="what">the phase's name for errors ("judge", "pairs", ...)</param>
    public static T[] Merge<T>(IEnumerable<(IReadOnlyList<int> Positions, IReadOnlyList<T> Values)> shards, int items, string what)
    {
        var merged = new T[items];
        var seen = new bool[items];
        int shard = 0;
        foreach (var (positions, values) in shards)
        {
            if (positions.Count != values.Count)
                throw new InvalidDataException($"{what} shard {shard} has {values.Count} values for {positions.Count} positions");
            for (int i = 0; i < positions.Count; i++)
            {
                int p = positions[i];
                if (p < 0 || p >= items) throw new InvalidDataException($"{what} shard {shard} has position {p}, outside 0..{items - 1}");
                if (seen[p]) throw new InvalidDataException($"{what}: position {p} appears in two shards (shard {shard} and an earlier one)");
                seen[p] = true;
                merged[p] = values[i];
            }
            shard++;
        }
        int missing = Array.IndexOf(seen, false);
        if (missing >= 0) throw new InvalidDataException($"{what}: position {missing} is in no shard ({seen.Count(s => !s)} missing)");
        return merged;
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);
}
