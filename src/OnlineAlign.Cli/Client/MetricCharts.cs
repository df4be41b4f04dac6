using OnlineAlign.Api.V1;
using ScottPlot;

namespace OnlineAlign.Cli.Client;

/// <summary>PNG charts of round metrics: one panel per group (rewards, accuracy, consistency, KL, lengths).</summary>
public static class MetricCharts
{
    public static readonly (string Title, string[] Metrics)[] Panels =
    [
        ("rewards", ["rewards/chosen", "rewards/rejected", "rewards/margins"]),
        ("accuracy", ["eval/accuracy", "rewards/accuracies", "generation/accuracy"]),
        ("consistency", ["consistency/C", "judge/tau_vs_verifier"]),
        ("KL", ["kl/reference", "kl/initial"]),
        ("lengths", ["generation/length_mean", "lengths/chosen", "lengths/rejected"]),
    ];

    /// <summary>Writes the panels side by side into one PNG and returns its path (round 0, if given, has evaluation metrics only).</summary>
    public static string Write(IReadOnlyList<RoundMetrics> rounds, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var multiplot = new Multiplot();
        multiplot.AddPlots(Panels.Length);
        for (int i = 0; i < Panels.Length; i++)
        {
            var plot = multiplot.GetPlot(i);
            plot.Title(Panels[i].Title);
            plot.XLabel("round");
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true }; // rounds are whole
            foreach (var metric in Panels[i].Metrics)
            {
                var points = rounds.Where(r => r.Metrics.TryGetValue(metric, out var v) && double.IsFinite(v)).ToList();
                if (points.Count == 0) continue;
                var line = plot.Add.Scatter(points.Select(r => (double)r.Round).ToArray(), points.Select(r => r.Metrics[metric]).ToArray());
                line.LegendText = metric;
            }
            plot.ShowLegend();
        }
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        multiplot.SavePng(path, 400 * Panels.Length, 400);
        return Path.GetFullPath(path);
    }
}
