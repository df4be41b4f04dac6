using System.CommandLine;
using OnlineAlign.Cli.Client;
using OnlineAlign.Modeling;
using OnlineAlign.Serving;

namespace OnlineAlign.Cli.Commands;

/// <summary>
/// `onlinealign serve`: a policy behind an OpenAI-compatible API (src/OnlineAlign.Serving) until Ctrl-C. The policy is a
/// folder on this machine (--folder: a model, an `export` output, a round's checkpoint), or a run's committed round,
/// downloaded from the cluster as `export` downloads it (into a temporary folder, removed on exit).
/// </summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var run = new Argument<string?>("run-id") { Description = "a run whose committed round to serve (downloaded like `export`); or use --folder",
            Arity = ArgumentArity.ZeroOrOne };
        var folder = new Option<string?>("--folder") { Description = "a Hugging Face model folder or an `export` output to serve" };
        var round = new Option<int>("--round") { Description = "with a run id: the committed round to serve (-1: the last)", DefaultValueFactory = _ => -1 };
        var baseFolder = new Option<string?>("--base") { Description = "the base model folder of an adapter-only LoRA checkpoint (served as base " +
            "+ adapter, unmerged)" };
        var listen = new Option<string>("--listen") { Description = "IP address to listen on; off loopback an API key is required",
            DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0: a free one; the URL is printed)", DefaultValueFactory = _ => 8000 };
        var maxConcurrent = new Option<int>("--max-concurrent") { Description = "requests admitted at once (generating or queued); more get 429",
            DefaultValueFactory = _ => 8 };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto", DefaultValueFactory = _ => "cpu" };
        var name = new Option<string?>("--model-name") { Description = "the model id clients name (default: the folder's name, or RUN-round-N)" };
        var command = new Command("serve", "Serve a policy over an OpenAI-compatible HTTP API (/v1/models, /v1/completions, /v1/chat/completions) until Ctrl-C")
        {
            run, folder, round, baseFolder, listen, port, maxConcurrent, device, name,
        };
        command.SetAction(async (parse, ct) =>
        {
            string? runId = parse.GetValue(run), local = parse.GetValue(folder);
            if ((runId is null) == (local is null)) throw new ArgumentException("serve: give a run id or --folder (one of them)");
            var options = new ServeOptions
            {
                Listen = parse.GetValue(listen)!, Port = parse.GetValue(port), ApiKey = NullIfEmpty(parse.GetValue(ApiConnection.Key)),
                Limits = new ServeLimits { MaxConcurrent = parse.GetValue(maxConcurrent) },
            };
            // Refused before anything is downloaded or loaded.
            if (ServeExposure.Problem(options.Listen, options.ApiKey) is { } problem) throw new InvalidOperationException(problem);
            string? download = null;
            try
            {
                string? id = parse.GetValue(name);
                if (runId is not null)
                {
                    int n = parse.GetValue(round);
                    download = Path.Combine(Path.GetTempPath(), $"onlinealign-serve-{Guid.NewGuid():N}"[..30]);
                    local = await PolicyDownload.WriteAsync(ApiConnection.Client(parse), runId, n, download, ct);
                    id ??= n >= 0 ? $"{runId}-round-{n}" : runId;
                }
                string? folderOfBase = parse.GetValue(baseFolder);
                using var model = CommandFiles.Load(() => ServedModel.Load(local!, DeviceSetting.Resolve(parse.GetValue(device)), id, folderOfBase),
                    local, folderOfBase);
                await using var host = await ServeHost.StartAsync(model, options, ct);
                Console.WriteLine($"Serving '{model.Id}' ({model.Model.Config.ModelType}, context {model.Context}, chat format {model.Tokenizer.Chat.Name}) " +
                                  $"at {host.Url}{(options.ApiKey is null ? "" : " (API key required)")}; Ctrl-C stops");
                try { await Task.Delay(Timeout.Infinite, ct); }
                catch (OperationCanceledException) { }
                return 0;
            }
            finally
            {
                if (download is not null && Directory.Exists(download)) Directory.Delete(download, recursive: true);
            }
        });
        return command;
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
