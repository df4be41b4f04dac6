using System.CommandLine;
using OnlineAlign.Api.V1;
using OnlineAlign.Cli.Client;
using OnlineAlign.Cli.Local;
using Spectre.Console;

namespace OnlineAlign.Cli.Commands;

/// <summary>
/// `onlinealign local`: the main job on one machine. Starts Azurite and a silo, runs the default run
/// (the built-in tiny model warm-started on a built-in task and taught to judge it, then a round in which
/// it judges its own responses, without labels), watches it, exports the aligned policy and the charts, shuts down.
/// </summary>
public static class LocalCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "folder for Azurite data, logs and outputs", DefaultValueFactory = _ => ".onlinealign" };
        var healthOnly = new Option<bool>("--health-only") { Description = "only bring the cluster up, check it is healthy, and shut down" };
        var command = new Command("local", "Run the default alignment run on a local cluster (Azurite + one silo) and shut down cleanly") { data, healthOnly };
        RunCommands.AddSpecOptions(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            string folder = Path.GetFullPath(parse.GetValue(data)!);
            Directory.CreateDirectory(folder);
            await using var cluster = await LocalCluster.StartAsync(folder, line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]"), cancellationToken);
            AnsiConsole.MarkupLine($"[green]Cluster healthy[/]: gRPC API at {cluster.ApiAddress}");
            if (parse.GetValue(healthOnly)) return 0;

            var client = ApiConnection.Client(cluster.ApiAddress, parse.GetValue(ApiConnection.Key));
            var spec = RunCommands.BuildSpec(parse);
            if (!spec.HasName) spec.Name = "local";
            var run = await client.StartRunAsync(new StartRunRequest { Spec = spec }, cancellationToken: cancellationToken);
            AnsiConsole.MarkupLine($"Started run [bold]{run.Id}[/]: {run.Spec.Rounds} rounds of {run.Spec.Judge.Kind} judging, " +
                                   $"{run.Spec.Loss.Kind} loss, consistency {run.Spec.Consistency}, task {run.Spec.Prompts.Task}");
            var final = await RunWatcher.WatchAsync(client, run.Id, cancellationToken);
            RunCommands.Print(final);
            var listed = await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id }, cancellationToken: cancellationToken);
            var rounds = listed.Rounds;
            AnsiConsole.Write(RunWatcher.RoundsTable(listed));
            if (rounds.Count == 0) return 1;

            string outputs = Path.Combine(folder, "runs", run.Id);
            var exported = await client.ExportPolicyAsync(new ExportPolicyRequest { RunId = run.Id, Round = -1, OutputFolder = Path.Combine(outputs, "policy") },
                cancellationToken: cancellationToken);
            string chart = MetricCharts.Write(RunWatcher.WithInitial(listed), Path.Combine(outputs, "metrics.png"));
            AnsiConsole.MarkupLine($"Aligned policy (Hugging Face format): [bold]{exported.Folder}[/]");
            AnsiConsole.MarkupLine($"Metrics chart: [bold]{chart}[/]");
            return final.Status == "completed" ? 0 : 1;
        });
        return command;
    }
}
