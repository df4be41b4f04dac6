using System.Diagnostics;
using System.Text.Json.Nodes;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Serving;

/// <summary>
/// Runs openai_node_client.cjs (the official `openai` npm package, pinned in package.json) against an OpenAI-compatible
/// base URL and returns what it printed: models, greedy chat and completion whole and streamed, a seeded pair, a wrong key's status.
/// </summary>
public static class OpenAiNodeClient
{
    public static async Task<JsonObject> RunAsync(string baseUrl, string apiKey, string model)
    {
        var start = new ProcessStartInfo("node", Path.Combine("tests", "OnlineAlign.Tests", "Serving", "openai_node_client.cjs"))
        {
            WorkingDirectory = RepositoryPaths.Root, RedirectStandardOutput = true, RedirectStandardError = true,
            Environment = { ["BASE_URL"] = baseUrl, ["API_KEY"] = apiKey, ["MODEL"] = model },
        };
        using var node = Process.Start(start)!;
        var stderr = node.StandardError.ReadToEndAsync();
        string output = await node.StandardOutput.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2))) await node.WaitForExitAsync(timeout.Token);
        Assert.True(node.ExitCode == 0, $"node failed ({node.ExitCode}): {await stderr}");
        return JsonNode.Parse(output)!.AsObject();
    }
}
