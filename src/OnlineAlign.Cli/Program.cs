using System.CommandLine;
using OnlineAlign.Cli.Commands;

var root = new RootCommand("OnlineAlign: online preference alignment of language models on an Orleans cluster");
root.Subcommands.Add(LocalCommand.Create());
return await root.Parse(args).InvokeAsync();
