using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Serving;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Serving;

/// <summary>
/// `serve` driven by the official `openai` npm package (pinned in package.json, installed by `npm ci`), run by node:
/// models, chat and completions whole and streamed, greedy outputs equal to the engine's own, a seed reproduced, a wrong key refused.
/// </summary>
[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class ServeNodeClientTests
{
    private const string Key = "4a8e1c7f2b9d6e3a0c5f8b1d4e7a2c9f6b3e0d5a";

    [Fact]
    public async Task TheOfficialNodeClientGetsTheEnginesGreedyAnswersWholeAndStreamed()
    {
        string folder = RepositoryPaths.NewTempFolder("serve-node");
        using (var lm = BuiltinModels.Create(BuiltinModels.Tiny, seed: 11)) HfCheckpoint.Save(lm, folder, new ByteTokenizer().HfFiles());
        using var model = ServedModel.Load(folder, CPU, "tiny-policy");
        await using var host = await ServeHost.StartAsync(model, new ServeOptions { Port = 0, ApiKey = Key });

        var result = await OpenAiNodeClient.RunAsync(host.Url, Key, "tiny-policy");

        Assert.Equal(["tiny-policy"], result["models"]!.AsArray().Select(m => m!.GetValue<string>()));
        string chat = result["chat"]!["text"]!.GetValue<string>();
        // A plain model's chat prompt is the user's text: the answer is the engine's greedy continuation of it.
        Assert.Equal(DirectGreedy(folder, "sort 3 1 2", 40), chat);
        Assert.Equal(1 + "sort 3 1 2".Length, result["chat"]!["promptTokens"]!.GetValue<int>());
        Assert.Equal(chat, result["chatStreamed"]!["text"]!.GetValue<string>());
        Assert.True(result["chatStreamed"]!["chunks"]!.GetValue<int>() > 1 || chat.Length <= 1, "the chat answer was not streamed");
        Assert.Equal(result["chat"]!["finish"]!.GetValue<string>(), result["chatStreamed"]!["finish"]!.GetValue<string>());
        string completion = result["completion"]!["text"]!.GetValue<string>();
        Assert.Equal(DirectGreedy(folder, "reverse abc", 24), completion);
        Assert.Equal(completion, result["completionStreamed"]!["text"]!.GetValue<string>());
        var seeded = result["seeded"]!.AsArray();
        Assert.Equal(seeded[0]!.GetValue<string>(), seeded[1]!.GetValue<string>());
        Assert.Equal(401, result["wrongKey"]!.GetValue<int>());
    }

    /// <summary>What the generation call itself gives (the call `inspect --greedy` makes) for a completion prompt, as text.</summary>
    private static string DirectGreedy(string folder, string prompt, int maxTokens)
    {
        using var lm = HfCheckpoint.Load(folder, CPU, ScalarType.Float32);
        var tokenizer = new ByteTokenizer();
        var c = TextGenerator.Generate(lm, [[tokenizer.BosId, .. tokenizer.Encode(prompt)]],
            new SamplingOptions { MaxNewTokens = maxTokens, Temperature = 0, StopTokenIds = [tokenizer.EosId] })[0];
        return tokenizer.Decode(c.Stopped ? c.Tokens[..^1] : c.Tokens);
    }
}
