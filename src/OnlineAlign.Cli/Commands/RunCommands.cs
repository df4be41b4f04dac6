using System.Globalization;
using System.CommandLine;
using OnlineAlign.Api.V1;
using OnlineAlign.Cli.Client;
using Spectre.Console;

namespace OnlineAlign.Cli.Commands;

/// <summary>start, fork, status, rounds, watch, pause, resume, cancel, export, runs: thin clients of the Runs API.</summary>
public static class RunCommands
{
    private static readonly Argument<string> RunId = new("run-id") { Description = "the run's id (from start or `onlinealign runs`)" };

    public static IEnumerable<Command> Create()
    {
        yield return Start();
        yield return Fork();
        yield return Simple("status", "Show a run's state", async (client, id, ct) =>
            Print(await client.GetRunAsync(new GetRunRequest { RunId = id }, cancellationToken: ct)));
        yield return RoundsCommand();
        yield return Simple("watch", "Follow a run live until it stops", async (client, id, ct) =>
            Print(await RunWatcher.WatchAsync(client, id, ct)));
        yield return Simple("pause", "Pause a run now: the phase in flight stops at its next step (its work is redone on resume)", async (client, id, ct) =>
            Print(await client.PauseRunAsync(new RunRef { RunId = id }, cancellationToken: ct)));
        yield return Simple("resume", "Resume a paused or failed run from its last committed checkpoint", async (client, id, ct) =>
            Print(await client.ResumeRunAsync(new RunRef { RunId = id }, cancellationToken: ct)));
        yield return Simple("cancel", "Cancel a run", async (client, id, ct) =>
            Print(await client.CancelRunAsync(new RunRef { RunId = id }, cancellationToken: ct)));
        yield return Export();
        var list = new Command("runs", "List all runs");
        list.SetAction(async (parse, ct) =>
        {
            var table = new Table().AddColumns("id", "status", "round", "committed", "forked from", "error");
            var client = ApiConnection.Client(parse);
            for (string token = ""; ;)
            {
                var page = await client.ListRunsAsync(new ListRunsRequest { PageSize = 1000, PageToken = token }, cancellationToken: ct);
                foreach (var r in page.Runs)
                    table.AddRow(Markup.Escape(r.Id), r.Status, r.Round.ToString(CultureInfo.InvariantCulture),
                        $"{r.CommittedRounds}/{r.Spec.Rounds}", Markup.Escape(Lineage(r)), Markup.Escape(r.Error));
                if ((token = page.NextPageToken) == "") break;
            }
            AnsiConsole.Write(table);
            return 0;
        });
        yield return list;
    }

    private static Command Simple(string name, string description, Func<Runs.RunsClient, string, CancellationToken, Task> action)
    {
        var command = new Command(name, description) { RunId };
        command.SetAction(async (parse, ct) => { await action(ApiConnection.Client(parse), parse.GetValue(RunId)!, ct); return 0; });
        return command;
    }

    private static readonly Option<string?> SpecFile = new("--spec") { Description = "run spec as JSON (onlinealign.v1.RunSpec; snake_case or " +
        "camelCase names)" };
    private static readonly Option<int?> Rounds = new("--rounds") { Description = "number of online rounds" };
    private static readonly Option<string?> Task = new("--task") { Description = "built-in task: sort, add, reverse" };
    private static readonly Option<string?> Model = new("--model") { Description = "built-in model name (tiny) or a Hugging Face folder" };
    private static readonly Option<string?> Judge = new("--judge") { Description = "llm, self_consistent, implicit, verifier, reward_model, " +
        "majority or likelihood" };
    private static readonly Option<string?> Loss = new("--loss") { Description = "sppo, dpo, ipo, cdpo, robust, hinge, sppo_hard, cream, rft" };
    private static readonly Option<string?> Consistency = new("--consistency") { Description = "none, dyn or avg" };
    private static readonly Option<ulong?> Seed = new("--seed") { Description = "run seed" };
    private static readonly Option<string?> Name = new("--name") { Description = "run name (prefix of its id)" };
    private static readonly Option<int?> PromptsPerRound = new("--prompts-per-round") { Description = "prompts sampled per round" };
    private static readonly Option<string?> Device = new("--device") { Description = "cpu, cuda, cuda:N, auto" };
    private static readonly Option<bool> Follow = new("--watch") { Description = "watch the run until it stops" };

    /// <summary>The spec from --spec (if any) with flag overrides applied.</summary>
    public static RunSpec BuildSpec(ParseResult parse)
    {
        var spec = new RunSpec();
        if (parse.GetValue(SpecFile) is string file) spec = Client.SpecFile.Load(file);
        spec.Model ??= new ModelSpec();
        spec.Prompts ??= new PromptSpec();
        spec.Judge ??= new JudgeSpec();
        spec.Loss ??= new LossSpec();
        if (parse.GetValue(Rounds) is int rounds) spec.Rounds = rounds;
        if (parse.GetValue(Task) is string task) spec.Prompts.Task = task;
        if (parse.GetValue(Model) is string model)
        {
            if (Directory.Exists(model)) spec.Model.HfFolder = Path.GetFullPath(model); else spec.Model.Builtin = model;
        }
        if (parse.GetValue(Judge) is string judge) spec.Judge.Kind = judge;
        if (parse.GetValue(Loss) is string loss) spec.Loss.Kind = loss;
        if (parse.GetValue(Consistency) is string consistency) spec.Consistency = consistency;
        if (parse.GetValue(Seed) is ulong seed) spec.Seed = seed;
        if (parse.GetValue(Name) is string name) spec.Name = name;
        if (parse.GetValue(PromptsPerRound) is int ppr) spec.PromptsPerRound = ppr;
        if (parse.GetValue(Device) is string device) spec.Device = device;
        return spec;
    }

    public static void AddSpecOptions(Command command)
    {
        foreach (var o in new Option[] { SpecFile, Rounds, Task, Model, Judge, Loss, Consistency, Seed, Name, PromptsPerRound, Device })
            command.Options.Add(o);
    }

    private static Command Start()
    {
        var requestId = new Option<string?>("--request-id")
        {
            Description = "make the start safe to repeat: the same id and spec answer the run already started (up to 64 of [A-Za-z0-9._-])",
        };
        var command = new Command("start", "Start a run from a spec file and/or flags") { requestId };
        AddSpecOptions(command);
        command.Options.Add(Follow);
        command.SetAction(async (parse, ct) =>
        {
            var client = ApiConnection.Client(parse);
            var request = new StartRunRequest { Spec = BuildSpec(parse) };
            if (parse.GetValue(requestId) is string id) request.RequestId = id;
            var run = await client.StartRunAsync(request, cancellationToken: ct);
            Console.WriteLine(run.Id);
            if (parse.GetValue(Follow)) Print(await RunWatcher.WatchAsync(client, run.Id, ct));
            return 0;
        });
        return command;
    }

    /// <summary>
    /// fork: a new run from a committed round of another, with --set overrides of the parent's spec. The silo applies
    /// and checks them (and refuses model.* changes); the same parser here only gives a bad setting's error sooner.
    /// </summary>
    private static Command Fork()
    {
        var round = new Option<int>("--round") { Description = "the parent's committed round to start from (0: its initial policy)", Required = true };
        var set = new Option<string[]>("--set")
        {
            Description = "path=value over the parent's spec, by runs.proto field names (loss.beta=0.05, judge.kind=llm, rounds=2); " +
                $"repeatable, up to {SpecOverrides.MaxOverrides}",
            AllowMultipleArgumentsPerToken = false,
        };
        var name = new Option<string?>("--name") { Description = "the new run's name (prefix of its id; default: the parent's)" };
        var requestId = new Option<string?>("--request-id") { Description = "make the fork safe to repeat: the same id answers the run already started" };
        var command = new Command("fork",
            "Start a new run from a committed round of another run, with spec overrides") { RunId, round, set, name, requestId, Follow };
        command.SetAction(async (parse, ct) =>
        {
            var overrides = (parse.GetValue(set) ?? []).ToList();
            if (parse.GetValue(name) is string newName) overrides.Add($"name={newName}");
            var (_, problems) = SpecOverrides.Apply(new RunSpec(), overrides);
            if (problems.Count > 0)
            {
                Console.Error.WriteLine("--set: " + string.Join("; ", problems));
                return ExitCodes.BadInput;
            }
            var fork = new ForkFrom { RunId = parse.GetValue(RunId)!, Round = parse.GetValue(round) };
            fork.Overrides.AddRange(overrides);
            var request = new StartRunRequest { ForkFrom = fork };
            if (parse.GetValue(requestId) is string id) request.RequestId = id;
            var client = ApiConnection.Client(parse);
            var run = await client.StartRunAsync(request, cancellationToken: ct);
            Console.WriteLine(run.Id);
            if (parse.GetValue(Follow)) Print(await RunWatcher.WatchAsync(client, run.Id, ct));
            return 0;
        });
        return command;
    }

    /// <summary>"parent round N" for a forked run, empty otherwise.</summary>
    public static string Lineage(Run run) => run.ForkedFrom is { } f ? $"{f.RunId} round {f.Round}" : "";

    private static Command RoundsCommand()
    {
        var all = new Option<bool>("--all") { Description = "also the rounds a rollback superseded, with their epochs (for export --epoch)" };
        var command = new Command("rounds", "Show the metrics of every committed round as a table") { RunId, all };
        command.SetAction(async (parse, ct) =>
        {
            var request = new ListRoundsRequest { RunId = parse.GetValue(RunId)!, IncludeSuperseded = parse.GetValue(all) };
            var client = ApiConnection.Client(parse);
            var run = await client.GetRunAsync(new GetRunRequest { RunId = request.RunId }, cancellationToken: ct);
            var listed = await client.ListRoundsAsync(request, cancellationToken: ct);
            AnsiConsole.Write(RunWatcher.RoundsTable(listed, run.HasBestRound ? run.BestRound : null));
            // The rounds' warnings (an unscored judge, collapsed scores, length drift), as `watch` printed them.
            foreach (var r in listed.Rounds)
                foreach (var w in r.Warnings) AnsiConsole.MarkupLine($"[yellow]round {r.Round} warning:[/] {Markup.Escape(w)}");
            if (run.HasBestRound) AnsiConsole.MarkupLine($"best round {run.BestRound} (the guard): {Markup.Escape(run.BestReason)}");
            return 0;
        });
        return command;
    }

    private static Command Export()
    {
        var round = new Option<int?>("--round") { Description = "committed round to export (-1: the last; default: the guard's best round with " +
            "guard.enabled, else the last)" };
        var output = new Option<string>("--out") { Description = "a new output folder on this machine (Hugging Face format)", Required = true };
        var epoch = new Option<int?>("--epoch") { Description = "that attempt of the round: a round superseded by a rollback (the epoch `rounds " +
            "--all` shows); default: the current one" };
        var command = new Command("export", "Download a committed round's policy as a Hugging Face folder (files checked by sha256)") { RunId, round,
            output, epoch };
        command.SetAction(async (parse, ct) =>
        {
            var client = ApiConnection.Client(parse);
            int chosen = parse.GetValue(round) ?? await BestOrLast(client, parse.GetValue(RunId)!, ct);
            Console.WriteLine(await PolicyDownload.WriteAsync(client, parse.GetValue(RunId)!, chosen, parse.GetValue(output)!, ct, parse.GetValue(epoch)));
            return 0;
        });
        return command;
    }

    /// <summary>The round an export without --round takes: the guard's best round (said on standard error, with why), else the last (-1).</summary>
    public static async Task<int> BestOrLast(Runs.RunsClient client, string runId, CancellationToken ct)
    {
        var run = await client.GetRunAsync(new GetRunRequest { RunId = runId }, cancellationToken: ct);
        if (!run.HasBestRound) return -1;
        Console.Error.WriteLine($"exporting round {run.BestRound}, the guard's best round: {run.BestReason}");
        return run.BestRound;
    }

    public static void Print(Run run)
    {
        string color = run.Status switch { "completed" => "green", "failed" => "red", "paused" or "waiting_for_gpu" => "yellow", _ => "blue" };
        string phase = run.Phase is "" or "committed" ? "" : $" ({Markup.Escape(run.Phase)})";
        AnsiConsole.MarkupLine($"run [bold]{Markup.Escape(run.Id)}[/]: [{color}]{run.Status}[/], round {run.Round}{phase}, " +
                               $"{run.CommittedRounds}/{run.Spec.Rounds} rounds committed"
                                   + (run.Error.Length > 0 ? $"\n  error: {Markup.Escape(run.Error)}" : "")
                               + (run.MemoryPlan.Length > 0 ? $"\n  memory: {Markup.Escape(run.MemoryPlan)}" : "")
                               + (run.StopReason.Length > 0 ? $"\n  stopped: {Markup.Escape(run.StopReason)}" : "")
                               + (run.HasBestRound ? $"\n  best round: {run.BestRound} ({Markup.Escape(run.BestReason)})" : "")
                               + (run.ForkedFrom is not null ? $"\n  forked from: {Markup.Escape(Lineage(run))}" : ""));
    }
}
