using System.Globalization;
using System.Text;
using System.Text.Json;
using OnlineAlign.Api.V1;

namespace OnlineAlign.Cli.Client;

/// <summary>One row of a run's metrics: a committed round (round 0: the initial policy) or one training step of a round.</summary>
public sealed record MetricRow(string RunId, string Kind, int Round, int? Step, IReadOnlyDictionary<string, double> Metrics);

/// <summary>All of a run's round and step metrics, as rows for pandas (CSV with one column per metric, or JSON lines).</summary>
public static class MetricRows
{
    public static async Task<List<MetricRow>> FetchAsync(Runs.RunsClient client, string runId, CancellationToken ct)
    {
        var listed = await client.ListRoundsAsync(new ListRoundsRequest { RunId = runId }, cancellationToken: ct);
        var rows = new List<MetricRow>();
        foreach (var round in RunWatcher.WithInitial(listed))
        {
            rows.Add(new MetricRow(runId, "round", round.Round, null, round.Metrics));
            if (round.Round == 0) continue;
            // One round at a time, so a reply stays small however many steps a run has.
            var steps = await TrainingStepPages.AllAsync(client, runId, round.Round, ct);
            rows.AddRange(steps.Select(s => new MetricRow(runId, "step", s.Round, s.Step, s.Metrics)));
        }
        return rows;
    }

    private static readonly string[] FixedColumns = ["run_id", "kind", "round", "step"];

    public static string Csv(IReadOnlyList<MetricRow> rows)
    {
        var names = rows.SelectMany(r => r.Metrics.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        var text = new StringBuilder();
        text.AppendLine(string.Join(',', FixedColumns.Concat(names.Select(Quote))));
        foreach (var r in rows)
            text.AppendLine(string.Join(',',
                new[] { Quote(r.RunId), r.Kind, r.Round.ToString(CultureInfo.InvariantCulture), r.Step?.ToString(CultureInfo.InvariantCulture) ?? "" }
                .Concat(names.Select(n => r.Metrics.TryGetValue(n, out var v) ? v.ToString("R", CultureInfo.InvariantCulture) : ""))));
        return text.ToString();
    }

    public static string JsonLines(IReadOnlyList<MetricRow> rows)
    {
        var options = new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
        var text = new StringBuilder();
        foreach (var r in rows)
        {
            var row = new Dictionary<string, object?> { ["run_id"] = r.RunId, ["kind"] = r.Kind, ["round"] = r.Round, ["step"] = r.Step };
            foreach (var (name, value) in r.Metrics) row[name] = value;
            text.AppendLine(JsonSerializer.Serialize(row, options));
        }
        return text.ToString();
    }

    private static string Quote(string value) =>
        value.IndexOfAny([',', '"', '\n']) < 0 ? value : "\"" + value.Replace("\"", "\"\"") + "\"";
}
