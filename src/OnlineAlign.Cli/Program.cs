using System.CommandLine;
using OnlineAlign.Cli;
using OnlineAlign.Cli.Commands;

// Redirected output (logs, CI, pipes) gets full-width tables instead of an 80-column squeeze.
if (Console.IsOutputRedirected) Spectre.Console.AnsiConsole.Profile.Width = 240;

var root = new RootCommand("OnlineAlign: online preference alignment of language models on an Orleans cluster.\n" + ExitCodes.Help);
root.Subcommands.Add(LocalCommand.Create());
root.Subcommands.Add(UpCommand.Create());
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(MergeAdapterCommand.Create());
root.Subcommands.Add(PlotCommand.Create());
root.Subcommands.Add(MetricsCommands.Metrics());
root.Subcommands.Add(MetricsCommands.Compare());
root.Subcommands.Add(TrainRewardModelCommand.Create());
foreach (var command in RunCommands.Create()) root.Subcommands.Add(command);
root.Options.Add(OnlineAlign.Cli.Client.ApiConnection.Address);
root.Options.Add(OnlineAlign.Cli.Client.ApiConnection.Key);
root.Options.Add(OnlineAlign.Cli.Client.ApiConnection.CaCertificate);
try
{
    // After Ctrl-C or SIGTERM a command gets this long to stop what it started (the local cluster stops its silo
    // and Azurite) before the process ends anyway.
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration
    {
        EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = TimeSpan.FromSeconds(15),
    });
}
catch (Grpc.Core.RpcException e)
{
    var (code, message) = ExitCodes.For(e, root.Parse(args).GetValue(OnlineAlign.Cli.Client.ApiConnection.Address) ?? "");
    Console.Error.WriteLine($"error: {message}");
    return code;
}
catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException
                              or DirectoryNotFoundException or NotSupportedException or InvalidOperationException)
{
    // Input problems are the user's to fix: say what and where, without a stack trace.
    Console.Error.WriteLine($"error: {e.Message}");
    return ExitCodes.BadInput;
}
