using System.Text.Json.Nodes;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Modeling;

// Starts the CLI as a process (the built onlinealign.dll): a cluster-kind test for the fast subset's filter.
[Trait("Kind", "Cluster")]
public class InspectCommandTests
{
    [Fact]
    public async Task InspectPrintsTheTransformersGreedyContinuationAsJson()
    {
        string folder = RepositoryPaths.Fixture("hf", "llama-tiny");
        var reference = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "reference.json")))!["greedy"]!;
        var prompt = reference["prompt"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        var (code, stdout, stderr) = await CliProcess.RunAsync(TimeSpan.FromMinutes(2),
            "inspect", "--model", folder, "--ids", string.Join(',', prompt), "--greedy", "16", "--response", "5,6,7");
        Assert.True(code == 0, stderr);
        var output = JsonNode.Parse(stdout)!;
        Assert.Equal(reference["output"]!.AsArray().Select(n => n!.GetValue<int>()).Skip(prompt.Length),
                     output["greedy"]!.AsArray().Select(n => n!.GetValue<int>()));
        Assert.Equal(320, output["last_logits"]!.AsArray().Count);
        Assert.Equal(3, output["response_logprobs"]!["token_logprobs"]!.AsArray().Count);
    }

    [Fact]
    public async Task InspectRejectsABadTokenIdByPosition()
    {
        var (code, _, stderr) = await CliProcess.RunAsync(TimeSpan.FromMinutes(2),
            "inspect", "--model", RepositoryPaths.Fixture("hf", "llama-tiny"), "--ids", "1,2,x");
        Assert.NotEqual(0, code);
        Assert.Contains("--ids: item 3 ('x')", stderr);
    }
}
