using System.Text.Json.Nodes;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Modeling;

// Starts the CLI as a process (the built onlinealign.dll): a cluster-kind test for the fast subset's filter.
[Trait("Kind", "Cluster")]
public class InspectCommandTests
{
    /// <summary>
    /// `inspect` against the transformers values in the fixture's reference.json (transformers 5.17, torch 2.11):
    /// the greedy continuation token for token, every position's logits and a response's per-token log-probs within 1e-4.
    /// </summary>
    [Fact]
    public async Task InspectPrintsTheTransformersGreedyLogitsAndLogProbsAsJson()
    {
        string folder = RepositoryPaths.Fixture("hf", "llama-tiny");
        var reference = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "reference.json")))!;
        static int[] Ints(JsonNode? node) => node!.AsArray().Select(n => n!.GetValue<int>()).ToArray();
        static double[] Doubles(JsonNode? node) => node!.AsArray().Select(n => n!.GetValue<double>()).ToArray();

        var greedy = reference["greedy"]!;
        var prompt = Ints(greedy["prompt"]);
        var output = await Inspect("--ids", string.Join(',', prompt), "--greedy", greedy["max_new_tokens"]!.GetValue<int>().ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(Ints(greedy["output"]).Skip(prompt.Length), Ints(output["greedy"]));

        // Every position's logits of the first reference sequence.
        var ids = Ints(reference["input_ids"]![0]);
        var logits = (await Inspect("--ids", string.Join(',', ids), "--all-positions", "--greedy", "0"))["logits"]!.AsArray();
        var expected = reference["logits"]![0]!.AsArray();
        Assert.Equal(ids.Length, logits.Count);
        for (int position = 0; position < ids.Length; position++)
        {
            var (ours, theirs) = (Doubles(logits[position]), Doubles(expected[position]));
            Assert.Equal(320, ours.Length);
            double worst = ours.Zip(theirs, (a, b) => Math.Abs(a - b)).Max();
            Assert.True(worst < 1e-4, $"position {position}: logits differ from transformers' by up to {worst:G3}");
        }

        // A response's log-probs given its prompt.
        var sequence = reference["sequence_logprobs"]![0]!;
        var scored = (await Inspect("--ids", string.Join(',', Ints(sequence["prompt"])), "--greedy", "0",
            "--response", string.Join(',', Ints(sequence["response"]))))["response_logprobs"]!;
        var (tokenLogProbs, referenceLogProbs) = (Doubles(scored["token_logprobs"]), Doubles(sequence["token_logprobs"]));
        Assert.Equal(referenceLogProbs.Length, tokenLogProbs.Length);
        Assert.All(tokenLogProbs.Zip(referenceLogProbs), p => Assert.True(Math.Abs(p.First - p.Second) < 1e-4, $"log-prob {p.First} vs transformers' {p.Second}"));
        Assert.Equal(sequence["logprob_sum"]!.GetValue<double>(), scored["sum"]!.GetValue<double>(), 1e-4);
    }

    private static async Task<JsonNode> Inspect(params string[] args)
    {
        var (code, stdout, stderr) = await CliProcess.RunAsync(TimeSpan.FromMinutes(2),
            ["inspect", "--model", RepositoryPaths.Fixture("hf", "llama-tiny"), .. args]);
        Assert.True(code == 0, stderr);
        return JsonNode.Parse(stdout)!;
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
