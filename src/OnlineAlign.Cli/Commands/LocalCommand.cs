using System.CommandLine;
using OnlineAlign.Cli.Local;
using Spectre.Console;

namespace OnlineAlign.Cli.Commands;

/// <summary>`onlinealign local`: the main job on one machine.</summary>
public static class LocalCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "folder for Azurite data, logs and outputs", DefaultValueFactory = _ => ".onlinealign" };
        var command = new Command("local", "Start Azurite and a local silo, check that the cluster is healthy, then shut down cleanly");
        command.Options.Add(data);
        command.SetAction(async (parse, cancellationToken) =>
        {
            string folder = Path.GetFullPath(parse.GetValue(data)!);
            Directory.CreateDirectory(folder);
            await using var cluster = await LocalCluster.StartAsync(folder, line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]"), cancellationToken);
            AnsiConsole.MarkupLine($"[green]Cluster healthy[/]: gRPC API at {cluster.ApiAddress} (health: SERVING)");
            return 0;
        });
        return command;
    }
}
