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
        var fresh = new Option<bool>("--fresh") { Description = "start a new run even if the data folder holds an interrupted one (by default " +
            "that run is resumed)" };
        var command = new Command("local", "Run the default alignment run on a local cluster (Azurite + one silo) and shut down cleanly; " +
                                           "Ctrl-C stops everything (twice: at once) and the next `local` with the same --data resumes the " +
                                               "run") { data, healthOnly, fresh };
        RunCommands.AddSpecOptions(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            string folder = Path.GetFullPath(parse.GetValue(data)!);
            Directory.CreateDirectory(folder);
            await using var cluster = await LocalCluster.StartAsync(folder, line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]"),
                cancellationToken);
            using var force = ForceStopOnSecondInterrupt(cluster);
            AnsiConsole.MarkupLine($"[green]Cluster healthy[/]: gRPC API at {cluster.ApiAddress}; Prometheus metrics at {cluster.MetricsAddress}/metrics, " +
                                   $"Orleans dashboard at {cluster.MetricsAddress}/dashboard, runs in a browser at {cluster.MetricsAddress}/ui/");
            if (parse.GetValue(healthOnly)) return 0;

            var client = ApiConnection.Client(cluster.ApiAddress, parse.GetValue(ApiConnection.Key));
            string marker = Path.Combine(folder, MarkerFile);
            var run = parse.GetValue(fresh) ? null : await InterruptedRun(client, marker, cancellationToken);
            if (run is not null)
            {
                AnsiConsole.MarkupLine(run.CommittedRounds < run.Spec.Rounds
                    ? $"Resuming interrupted run [bold]{run.Id}[/]: {run.CommittedRounds} of {run.Spec.Rounds} rounds committed, continuing at " +
                        $"round {run.CommittedRounds + 1} " +
                      "(--fresh starts a new run instead)"
                    : $"Resuming interrupted run [bold]{run.Id}[/]: it finished its {run.Spec.Rounds} rounds as the cluster came up");
            }
            else
            {
                var spec = RunCommands.BuildSpec(parse);
                if (!spec.HasName) spec.Name = "local";
                run = await client.StartRunAsync(new StartRunRequest { Spec = spec }, cancellationToken: cancellationToken);
                await File.WriteAllTextAsync(marker, run.Id, CancellationToken.None);
                AnsiConsole.MarkupLine($"Started run [bold]{run.Id}[/]: {run.Spec.Rounds} round{(run.Spec.Rounds == 1 ? "" : "s")} of " +
                    $"{run.Spec.Judge.Kind} judging, " +
                                       $"{run.Spec.Loss.Kind} loss, consistency {run.Spec.Consistency}, task {run.Spec.Prompts.Task}");
            }
            Run final;
            try
            {
                final = await RunWatcher.WatchAsync(client, run.Id, cancellationToken);
            }
            catch (Exception e) when (cancellationToken.IsCancellationRequested && e is OperationCanceledException or Grpc.Core.RpcException)
            {
                AnsiConsole.MarkupLine($"[yellow]Interrupted[/]: stopping the cluster. Run [bold]{run.Id}[/] keeps its committed rounds; " +
                                       "run the same command again to resume it.");
                return ExitCodes.Interrupted;
            }
            RunCommands.Print(final);
            if (final.Status is "completed" or "failed" or "cancelled") File.Delete(marker);
            var listed = await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id }, cancellationToken: cancellationToken);
            var rounds = listed.Rounds;
            AnsiConsole.Write(RunWatcher.RoundsTable(listed, final.HasBestRound ? final.BestRound : null));
            if (rounds.Count == 0) return 1;

            string outputs = Path.Combine(folder, "runs", run.Id);
            // A resumed run that was exported before it was interrupted keeps that export: the same weights.
            string policy = Path.Combine(outputs, "policy");
            string exported = Directory.Exists(policy) && Directory.EnumerateFileSystemEntries(policy).Any() ? policy
                : await PolicyDownload.WriteAsync(client, run.Id, final.HasBestRound ? final.BestRound : -1, policy, cancellationToken);
            var steps = await TrainingStepPages.AllAsync(client, run.Id, 0, cancellationToken);
            string chart = MetricCharts.Write(RunWatcher.WithInitial(listed), Path.Combine(outputs, "metrics.png"), steps);
            AnsiConsole.MarkupLine($"Aligned policy (Hugging Face format): [bold]{exported}[/]");
            AnsiConsole.MarkupLine($"Metrics chart: [bold]{chart}[/]");
            return final.Status == "completed" ? 0 : 1;
        });
        return command;
    }

    /// <summary>Names the run the last `local` in a data folder started, until that run has ended and been reported.</summary>
    private const string MarkerFile = "local-run.txt";

    /// <summary>
    /// The run the last `local` in this data folder started and did not see to its end, if the cluster is still
    /// driving it (the silo wakes such runs as it comes up, so it may even have finished meanwhile). A paused,
    /// failed or cancelled run is not taken up again here.
    /// </summary>
    private static async Task<Run?> InterruptedRun(Runs.RunsClient client, string marker, CancellationToken cancellationToken)
    {
        if (!File.Exists(marker)) return null;
        string id = (await File.ReadAllTextAsync(marker, cancellationToken)).Trim();
        try
        {
            var run = await client.GetRunAsync(new GetRunRequest { RunId = id }, cancellationToken: cancellationToken);
            return run.Status is "running" or "pending" or "waiting_for_gpu" or "completed" ? run : null;
        }
        catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.NotFound) { return null; }
    }

    /// <summary>The first Ctrl-C stops gracefully (the command's token); a second one ends the silo and Azurite at once.</summary>
    private static Unsubscribe ForceStopOnSecondInterrupt(LocalCluster cluster)
    {
        int presses = 0;
        ConsoleCancelEventHandler handler = (_, e) =>
        {
            if (Interlocked.Increment(ref presses) < 2) return;
            e.Cancel = false;
            cluster.Kill();
            Console.Error.WriteLine("Stopped at once (second Ctrl-C); runs resume from their last committed round.");
            Environment.Exit(130);
        };
        Console.CancelKeyPress += handler;
        return new Unsubscribe(() => Console.CancelKeyPress -= handler);
    }

    private sealed class Unsubscribe(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
