namespace OnlineAlign.Alignment.Consistency;

/// <summary>
/// How far two scorings of the same N responses agree. CREAM turns Kendall's tau into a consistency
/// rate C = (tau + 1) / 2 that softens the preference label.
/// </summary>
public static class RankAgreement
{
    /// <summary>
    /// Kendall's tau-b (ties in either scoring handled) over the responses both scorings could score (a NaN,
    /// an unparsable judgement, leaves its response out); 0 when fewer than two remain or either is all ties.
    /// </summary>
    public static double KendallTauB(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        Check(x, y);
        var scored = Enumerable.Range(0, x.Count).Where(i => double.IsFinite(x[i]) && double.IsFinite(y[i])).ToArray();
        if (scored.Length < x.Count) return KendallTauB(scored.Select(i => x[i]).ToArray(), scored.Select(i => y[i]).ToArray());
        long concordant = 0, discordant = 0, tiesX = 0, tiesY = 0;
        for (int i = 0; i < x.Count; i++)
            for (int j = i + 1; j < x.Count; j++)
            {
                int dx = Math.Sign(x[i] - x[j]), dy = Math.Sign(y[i] - y[j]);
                if (dx == 0 && dy == 0) { tiesX++; tiesY++; }
                else if (dx == 0) tiesX++;
                else if (dy == 0) tiesY++;
                else if (dx == dy) concordant++;
                else discordant++;
            }
        long pairs = (long)x.Count * (x.Count - 1) / 2;
        double denominator = Math.Sqrt((double)(pairs - tiesX) * (pairs - tiesY));
        return denominator == 0 ? 0 : (concordant - discordant) / denominator;
    }

    /// <summary>
    /// Whether the two scorings rank anything: at least two responses both could score. A prompt whose responses
    /// went unscored says nothing about agreement, so it is left out of means rather than counted as tau 0.
    /// </summary>
    public static bool Ranks(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        Check(x, y);
        return Enumerable.Range(0, x.Count).Count(i => double.IsFinite(x[i]) && double.IsFinite(y[i])) >= 2;
    }

    /// <summary>Spearman's rho: Pearson correlation of average ranks; 0 when either is constant.</summary>
    public static double Spearman(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        Check(x, y);
        var rx = AverageRanks(x);
        var ry = AverageRanks(y);
        double mx = rx.Average(), my = ry.Average();
        double cov = 0, vx = 0, vy = 0;
        for (int i = 0; i < rx.Length; i++)
        {
            cov += (rx[i] - mx) * (ry[i] - my);
            vx += (rx[i] - mx) * (rx[i] - mx);
            vy += (ry[i] - my) * (ry[i] - my);
        }
        return vx == 0 || vy == 0 ? 0 : cov / Math.Sqrt(vx * vy);
    }

    /// <summary>1 when both scorings put the same response on top (first index on ties), else 0.</summary>
    public static double TopOrder(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        Check(x, y);
        return ArgMax(x) == ArgMax(y) ? 1 : 0;
    }

    /// <summary>CREAM's consistency rate from Kendall's tau.</summary>
    public static double ConsistencyRate(double tau) => (tau + 1) / 2;

    public static double[] AverageRanks(IReadOnlyList<double> values)
    {
        var order = Enumerable.Range(0, values.Count).OrderBy(i => values[i]).ToArray();
        var ranks = new double[values.Count];
        for (int start = 0; start < order.Length;)
        {
            int end = start;
            while (end + 1 < order.Length && values[order[end + 1]] == values[order[start]]) end++;
            double rank = (start + end) / 2.0 + 1;
            for (int k = start; k <= end; k++) ranks[order[k]] = rank;
            start = end + 1;
        }
        return ranks;
    }

    private static int ArgMax(IReadOnlyList<double> v)
    {
        int best = 0;
        for (int i = 1; i < v.Count; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    private static void Check(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count) throw new ArgumentException($"the two scorings cover {x.Count} and {y.Count} responses");
    }
}
