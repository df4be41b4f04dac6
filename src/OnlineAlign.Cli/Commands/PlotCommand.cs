using System.CommandLine;
using OnlineAlign.Api.V1;
using OnlineAlign.Cli.Client;

namespace OnlineAlign.Cli.Commands;

/// <summary>`onlinealign plot`: the round metrics of a run as a PNG.</summary>
public static class PlotCommand
{
    public static Command Create()
    {
        var runId = new Argument<string>("run-id");
        var output = new Option<string>("--out") { Description = "PNG file to write", DefaultValueFactory = _ => "metrics.png" };
        var command = new Command("plot",
            "Write PNG charts of a run's round metrics (rewards, margins, accuracy, consistency, KL, lengths) and per-step loss") { runId, output };
        command.SetAction(async (parse, ct) =>
        {
            var client = ApiConnection.Client(parse);
            var listed = await client.ListRoundsAsync(new ListRoundsRequest { RunId = parse.GetValue(runId)! }, cancellationToken: ct);
            var steps = await TrainingStepPages.AllAsync(client, parse.GetValue(runId)!, 0, ct);
            Console.WriteLine(MetricCharts.Write(RunWatcher.WithInitial(listed), parse.GetValue(output)!, steps));
            return 0;
        });
        return command;
    }
}
