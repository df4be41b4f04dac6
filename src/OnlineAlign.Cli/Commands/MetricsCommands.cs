using System.CommandLine;
using System.Globalization;
using OnlineAlign.Api.V1;
using OnlineAlign.Cli.Client;
using Spectre.Console;

namespace OnlineAlign.Cli.Commands;

/// <summary>`onlinealign metrics` (a run's round and step metrics as CSV or JSON lines) and `onlinealign compare` (runs side by side).</summary>
public static class MetricsCommands
{
    public static Command Metrics()
    {
        var runId = new Argument<string>("run-id");
        var format = new Option<string>("--format") { Description = "csv (one column per metric) or jsonl", DefaultValueFactory = _ => "csv" };
        format.AcceptOnlyFromAmong("csv", "jsonl");
        var output = new Option<string?>("--out") { Description = "file to write (default: standard output)" };
        var command = new Command("metrics",
            "Write every round's and every training step's metrics of a run, for pandas (pd.read_csv / pd.read_json(lines=True))")
            { runId, format, output };
        command.SetAction(async (parse, ct) =>
        {
            var rows = await MetricRows.FetchAsync(ApiConnection.Client(parse), parse.GetValue(runId)!, ct);
            string text = parse.GetValue(format) == "jsonl" ? MetricRows.JsonLines(rows) : MetricRows.Csv(rows);
            if (parse.GetValue(output) is { } path) await File.WriteAllTextAsync(path, text, ct);
            else Console.Write(text);
            return 0;
        });
        return command;
    }

    public static Command Compare()
    {
        var runIds = new Argument<string[]>("run-ids") { Arity = new ArgumentArity(2, 16) };
        var output = new Option<string>("--out") { Description = "PNG overlay chart to write", DefaultValueFactory = _ => "compare.png" };
        var command = new Command("compare", "Print runs' final metrics side by side and write an overlay chart of their rounds") { runIds, output };
        command.SetAction(async (parse, ct) =>
        {
            var client = ApiConnection.Client(parse);
            var runs = new List<(string Id, List<RoundMetrics> Rounds)>();
            foreach (var id in parse.GetValue(runIds)!)
                runs.Add((id, RunWatcher.WithInitial(await client.ListRoundsAsync(new ListRoundsRequest { RunId = id }, cancellationToken: ct))));
            var table = new Table().AddColumn("metric (last committed round)");
            foreach (var (id, rounds) in runs) table.AddColumn(Markup.Escape($"{id} (round {(rounds.Count == 0 ? "-" : rounds[^1].Round)})"));
            // A fork's lineage first: its round 0 is its parent's round, so its rounds continue from there.
            var lineages = new List<string>();
            foreach (var (id, _) in runs) lineages.Add(RunCommands.Lineage(await client.GetRunAsync(new GetRunRequest { RunId = id }, cancellationToken: ct)));
            if (lineages.Any(l => l.Length > 0)) table.AddRow(["forked from", .. lineages.Select(Markup.Escape)]);
            var names = runs.SelectMany(r => r.Rounds.LastOrDefault()?.Metrics.Keys ?? Enumerable.Empty<string>()).Distinct().Order(StringComparer.Ordinal);
            foreach (var name in names)
                table.AddRow([Markup.Escape(name),
                    .. runs.Select(r => r.Rounds.LastOrDefault()?.Metrics.TryGetValue(name, out var v) == true
                        ? v.ToString("0.####", CultureInfo.InvariantCulture) : "")]);
            AnsiConsole.Write(table);
            Console.WriteLine(MetricCharts.WriteComparison(runs, parse.GetValue(output)!));
            return 0;
        });
        return command;
    }
}
