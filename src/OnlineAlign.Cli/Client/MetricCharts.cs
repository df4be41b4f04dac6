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

    /// <summary>
    /// Writes the panels side by side into one PNG and returns its path (round 0, if given, has evaluation metrics
    /// only); with training steps, a last panel draws loss and reward margin per optimiser step across rounds.
    /// </summary>
    public static string Write(IReadOnlyList<RoundMetrics> rounds, string path, IReadOnlyList<TrainingStep>? steps = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var multiplot = new Multiplot();
        bool withSteps = steps is { Count: > 0 };
        multiplot.AddPlots(Panels.Length + (withSteps ? 1 : 0));
        if (withSteps)
        {
            var plot = multiplot.GetPlot(Panels.Length);
            plot.Title("training steps");
            plot.XLabel("optimiser step (all rounds)");
            foreach (var metric in new[] { "loss", "rewards/margins" })
            {
                var line = plot.Add.Scatter(Enumerable.Range(0, steps!.Count).Select(i => (double)i).ToArray(),
                    steps.Select(s => s.Metrics.TryGetValue(metric, out var v) && double.IsFinite(v) ? v : double.NaN).ToArray());
                line.LegendText = metric;
                line.MarkerSize = 0;
            }
            plot.ShowLegend();
        }
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
        multiplot.SavePng(path, 400 * (Panels.Length + (withSteps ? 1 : 0)), 400);
        return Path.GetFullPath(path);
    }

    /// <summary>Runs overlaid, one panel per headline metric (held-out accuracy, reward margin, consistency, KL), one line per run.</summary>
    public static string WriteComparison(IReadOnlyList<(string Id, List<RoundMetrics> Rounds)> runs, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string[] metrics = ["eval/accuracy", "rewards/margins", "consistency/C", "kl/reference"];
        var multiplot = new Multiplot();
        multiplot.AddPlots(metrics.Length);
        for (int i = 0; i < metrics.Length; i++)
        {
            var plot = multiplot.GetPlot(i);
            plot.Title(metrics[i]);
            plot.XLabel("round");
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
            foreach (var (id, rounds) in runs)
            {
                var points = rounds.Where(r => r.Metrics.TryGetValue(metrics[i], out var v) && double.IsFinite(v)).ToList();
                if (points.Count == 0) continue;
                var line = plot.Add.Scatter(points.Select(r => (double)r.Round).ToArray(), points.Select(r => r.Metrics[metrics[i]]).ToArray());
                line.LegendText = id;
            }
            plot.ShowLegend();
        }
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        multiplot.SavePng(path, 400 * metrics.Length, 400);
        return Path.GetFullPath(path);
    }
}
