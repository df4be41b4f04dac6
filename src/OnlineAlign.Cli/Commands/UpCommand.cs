using System.CommandLine;
using OnlineAlign.Api.V1;
using OnlineAlign.Cli.Client;
using OnlineAlign.Cli.Local;
using Spectre.Console;

namespace OnlineAlign.Cli.Commands;

/// <summary>
/// `onlinealign up`: the local cluster (Azurite + one silo, loopback, the same data folder as `local`) kept in
/// the foreground until Ctrl-C, for driving runs from another terminal with start, watch, pause, resume and
/// export. Runs that were in progress when it last stopped continue as soon as it is up.
/// </summary>
public static class UpCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "folder for Azurite data, logs and outputs (the same as `local`'s)",
            DefaultValueFactory = _ => ".onlinealign" };
        var port = new Option<int>("--port") { Description = "gRPC API port on 127.0.0.1 (0: any free port)", DefaultValueFactory = _ => 5080 };
        var command = new Command("up", "Bring up the local cluster (Azurite + one silo on loopback) and keep it up until Ctrl-C") { data, port };
        command.SetAction(async (parse, cancellationToken) =>
        {
            string folder = Path.GetFullPath(parse.GetValue(data)!);
            Directory.CreateDirectory(folder);
            int apiPort = parse.GetValue(port);
            if (apiPort is < 0 or > 65535) throw new ArgumentException($"--port must be between 0 and 65535, got {apiPort}");
            await using var cluster = await LocalCluster.StartAsync(folder, line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]"),
                cancellationToken,
                apiPort == 0 ? null : apiPort);
            var client = ApiConnection.Client(cluster.ApiAddress, parse.GetValue(ApiConnection.Key));
            var runs = await client.ListRunsAsync(new ListRunsRequest(), cancellationToken: cancellationToken);
            foreach (var run in runs.Runs.Where(r => r.Status is "running" or "waiting_for_gpu"))
                AnsiConsole.MarkupLine($"Run [bold]{run.Id}[/] continues: {run.CommittedRounds} of {run.Spec.Rounds} rounds committed");
            string api = cluster.ApiAddress;
            AnsiConsole.MarkupLine($"[green]Cluster up[/]: gRPC API at [bold]{api}[/], data in {folder}. Ctrl-C stops it; runs continue when it is up again.");
            AnsiConsole.MarkupLine($"Prometheus metrics at {cluster.MetricsAddress}/metrics, Orleans dashboard at {cluster.MetricsAddress}/dashboard, " +
                                   $"runs in a browser at {cluster.MetricsAddress}/ui/");
            AnsiConsole.MarkupLine("From another terminal:");
            foreach (var line in new[]
            {
                $"onlinealign start --api {api} --spec my-run.json --watch",
                $"onlinealign runs --api {api}",
                $"onlinealign watch --api {api} RUN_ID",
                $"onlinealign pause --api {api} RUN_ID        (stops the phase in flight; resume continues it)",
                $"onlinealign resume --api {api} RUN_ID",
                $"onlinealign export --api {api} RUN_ID --out policy/",
            })
                AnsiConsole.MarkupLine($"  [grey]{Markup.Escape(line)}[/]");
            try
            {
                await cluster.SiloExited.WaitAsync(cancellationToken);
                AnsiConsole.MarkupLine($"[red]The silo exited[/]; see {Path.Combine(folder, "silo.log")}");
                return 1;
            }
            catch (OperationCanceledException)
            {
                AnsiConsole.MarkupLine("[yellow]Stopping the cluster[/]; `onlinealign up` again continues the runs in progress.");
                return 0;
            }
        });
        return command;
    }
}
