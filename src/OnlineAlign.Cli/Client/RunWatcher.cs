using System.Globalization;
using Grpc.Core;
using OnlineAlign.Api.V1;
using Spectre.Console;

namespace OnlineAlign.Cli.Client;

/// <summary>
/// Follows a run over WatchRun: a live progress bar per round showing its current phase, and a metrics
/// line per committed round. Reconnects from the next uncommitted round if the stream drops.
/// </summary>
public static class RunWatcher
{
    public static readonly string[] Columns = ["eval/accuracy", "judge/score_mean", "judge/tau_vs_verifier", "consistency/C", "pairs/kept",
        "rewards/accuracies", "rewards/margins", "kl/initial", "generation/length_mean"];

    public static async Task<Run> WatchAsync(Runs.RunsClient client, string runId, CancellationToken ct)
    {
        Run last = await client.GetRunAsync(new GetRunRequest { RunId = runId }, cancellationToken: ct);
        int total = last.Spec.Rounds;
        int nextRound = 1;
        var rows = new List<RoundMetrics>();
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async ctx =>
            {
                var tasks = new Dictionary<int, ProgressTask>();
                ProgressTask For(int round) => tasks.TryGetValue(round, out var t) ? t
                    : tasks[round] = ctx.AddTask(round == 0 ? "prepare (warm start)" : $"round {round}/{total}", maxValue: 1);
                while (!ct.IsCancellationRequested)
                {
                    try
                    {
                        using var call = client.WatchRun(new WatchRunRequest { RunId = runId, FromRound = nextRound }, cancellationToken: ct);
                        await foreach (var e in call.ResponseStream.ReadAllAsync(ct))
                        {
                            if (e.Progress is { } p)
                            {
                                var task = For(p.Round);
                                task.Description = p.Round == 0 ? "prepare (warm start)" : $"round {p.Round}/{total}: {p.Phase}";
                                task.MaxValue = Math.Max(1, p.Total);
                                task.Value = p.Total > 0 ? p.Done : 0;
                            }
                            else if (e.RoundCommitted is { } r)
                            {
                                if (tasks.TryGetValue(0, out var prep) && !prep.IsFinished) { prep.Value = prep.MaxValue; prep.StopTask(); }
                                var task = For(r.Round);
                                task.Description = $"round {r.Round}/{total}: " + Summary(r);
                                task.Value = task.MaxValue;
                                task.StopTask();
                                rows.Add(r);
                                nextRound = r.Round + 1;
                            }
                            else if (e.Run is { } run) last = run;
                        }
                        break; // the server ended the stream: the run stopped
                    }
                    catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown
                        && !ct.IsCancellationRequested)
                    {
                        await Task.Delay(1000, ct); // dropped: reconnect from the next round, no gaps
                    }
                }
            });
        foreach (var r in rows)
            foreach (var w in r.Warnings) AnsiConsole.MarkupLine($"[yellow]round {r.Round} warning:[/] {Markup.Escape(w)}");
        return await client.GetRunAsync(new GetRunRequest { RunId = runId }, cancellationToken: ct);
    }

    public static string Summary(RoundMetrics r) => string.Join("  ", Columns.Where(r.Metrics.ContainsKey).Select(c => $"{c} {r.Metrics[c]:0.###}"));

    /// <summary>Round 0 (the initial policy), where it has been evaluated, then the committed rounds.</summary>
    public static List<RoundMetrics> WithInitial(ListRoundsResponse listed) =>
        (listed.Initial is null ? [] : new[] { listed.Initial }).Concat(listed.Rounds).ToList();

    // A superseded round names its attempt, the epoch `export --epoch` takes.
    private static string Label(RoundMetrics r) => r.Superseded ? $"{r.Round} (epoch {r.Epoch}, superseded)" : r.Round.ToString(CultureInfo.InvariantCulture);

    /// <param name="best">the guard's best round, marked "(best)" (null: the guard is off)</param>
    public static Table RoundsTable(ListRoundsResponse listed, int? best = null)
    {
        var table = new Table().AddColumn("round");
        foreach (var c in Columns) table.AddColumn(c);
        foreach (var r in WithInitial(listed))
            table.AddRow([Label(r) + (r.Round == best && !r.Superseded ? " (best)" : ""),
                .. Columns.Select(c => r.Metrics.TryGetValue(c, out var v) ? v.ToString("0.###", CultureInfo.InvariantCulture) : "")]);
        return table;
    }
}
