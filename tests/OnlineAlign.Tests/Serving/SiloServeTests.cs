using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using OnlineAlign.Api.V1;
using OnlineAlign.Cli.Client;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Serving;
using OnlineAlign.Tests.Infrastructure;
using OpenAI;
using OpenAI.Chat;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Serving;

/// <summary>
/// A silo serves any committed round over the OpenAI-compatible API (/v1 on its HTTP/1.1 port), with the model on a
/// GPU silo behind a served-round grain: a LoRA run's round 1 (base + adapter, unmerged) answers the official npm and
/// .NET clients, whole and streamed, exactly as `serve RUN --round 1` (the round exported and served by ServeHost) and
/// the generation call `inspect` makes; off loopback it needs the key; a round not committed or a run that does not exist
/// is 404, a bad value 400 naming the field.
/// </summary>
[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class SiloServeTests
{
    private const string Key = "7c1e9a4f2d8b5e0a3c6f9b2e5d8a1c4f7b0e3d6a";

    [Fact]
    public async Task ASiloServesACommittedLoraRoundAsServeDoesAndRefusesWhatItShould()
    {
        await using var cluster = await LocalTestCluster.StartKeyedAsync(Key, offLoopback: true, ("Silo__MaxServedModels", "1"));
        var client = cluster.Client(apiKey: Key);
        var spec = LocalTestCluster.SmallSpec(rounds: 1);
        spec.Model = new ModelSpec { Lora = new LoraSpec { R = 8, Alpha = 16, TargetModules = { "q_proj", "v_proj" } } };
        var run = await client.StartRunAsync(new StartRunRequest { Spec = spec });
        run = await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(5));
        string v1 = $"http://127.0.0.1:{cluster.Silos[0].MetricsPort}/v1", model = run.Id + "@1";

        // The official npm client against the silo; then against `serve`'s own host over the round exported as `serve RUN --round 1` downloads it.
        var silo = await OpenAiNodeClient.RunAsync(v1, Key, model);
        await cluster.Silos[0].WaitForOutputAsync($"serving {model} on this silo", TimeSpan.FromSeconds(30));
        Assert.Contains("base + LoRA adapter, unmerged", cluster.Silos[0].Output);
        string folder = await PolicyDownload.WriteAsync(client, run.Id, 1, Path.Combine(RepositoryPaths.NewTempFolder("silo-serve"), "round-1"),
            CancellationToken.None);
        using var exported = ServedModel.Load(folder, CPU, model);
        JsonObject local;
        await using (var host = await ServeHost.StartAsync(exported, new ServeOptions { Port = 0, ApiKey = Key })) local = await OpenAiNodeClient.RunAsync(host.Url, Key, model);

        var listed = silo["models"]!.AsArray().Select(m => m!.GetValue<string>()).ToList();
        Assert.Equal([run.Id, run.Id + "@1", run.Id + "@0"], listed);
        foreach (string part in new[] { "chat", "chatStreamed", "completion", "completionStreamed" })
            Assert.Equal(local[part]!["text"]!.GetValue<string>(), silo[part]!["text"]!.GetValue<string>());
        Assert.Equal(silo["chat"]!["text"]!.GetValue<string>(), silo["chatStreamed"]!["text"]!.GetValue<string>());
        // Not a vacuous comparison: the round answers something, and the chat answer came in pieces as it was decoded.
        Assert.NotEqual("", silo["chat"]!["text"]!.GetValue<string>() + silo["completion"]!["text"]!.GetValue<string>());
        Assert.True(silo["chatStreamed"]!["chunks"]!.GetValue<int>() > 1 || silo["chat"]!["text"]!.GetValue<string>().Length <= 1,
            "the silo's chat answer was not streamed");
        Assert.Equal(local["chat"]!["promptTokens"]!.GetValue<int>(), silo["chat"]!["promptTokens"]!.GetValue<int>());
        Assert.Equal(Greedy(exported, "reverse abc", 24), silo["completion"]!["text"]!.GetValue<string>());
        var seeded = silo["seeded"]!.AsArray();
        Assert.Equal(seeded[0]!.GetValue<string>(), seeded[1]!.GetValue<string>());
        Assert.Equal(401, silo["wrongKey"]!.GetValue<int>());

        // The official .NET client, naming the run alone (its latest committed round, 1): the same greedy chat, whole and streamed.
        var chat = new OpenAIClient(new ApiKeyCredential(Key), new OpenAIClientOptions { Endpoint = new Uri(v1) }).GetChatClient(run.Id);
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 40 };
        ChatMessage[] messages = [new UserChatMessage("sort 3 1 2")];
        var whole = (await chat.CompleteChatAsync(messages, options)).Value;
        Assert.Equal(silo["chat"]!["text"]!.GetValue<string>(), whole.Content.Count == 0 ? "" : whole.Content[0].Text);
        Assert.Equal(model, whole.Model);
        var streamed = new StringBuilder();
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, options))
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        Assert.Equal(silo["chat"]!["text"]!.GetValue<string>(), streamed.ToString());

        // Refusals: no key off loopback (401, an OpenAI error), a round not committed and a run that does not exist (404),
        // a name that is neither RUN nor RUN@N and a bad value read on the GPU silo (400 naming the field), a second round
        // beyond the silo's bound of loaded rounds (503).
        using var http = new HttpClient { BaseAddress = new Uri(v1 + "/") };
        var anonymous = await http.GetAsync("models");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal("authentication_error", JsonNode.Parse(await anonymous.Content.ReadAsStringAsync())!["error"]!["type"]!.GetValue<string>());
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        foreach (var (body, status, param, says) in new[]
        {
            ($$"""{"model": "{{run.Id}}@2", "prompt": "x"}""", HttpStatusCode.NotFound, "model", $"round 2 of run '{run.Id}' is not committed (committed: 0, 1)"),
            ("""{"model": "no-such-run@1", "prompt": "x"}""", HttpStatusCode.NotFound, "model", "run 'no-such-run' does not exist"),
            ($$"""{"model": "{{run.Id}}@one", "prompt": "x"}""", HttpStatusCode.BadRequest, "model", "is not RUN or RUN@N"),
            ($$"""{"model": "{{model}}", "prompt": "x", "temperature": 5}""", HttpStatusCode.BadRequest, "temperature", "temperature is 5"),
            // One round loaded is this silo's bound (Silo__MaxServedModels=1): another is refused until round 1 idles out.
            ($$"""{"model": "{{run.Id}}@0", "prompt": "x"}""", HttpStatusCode.ServiceUnavailable, "model", "Silo:MaxServedModels"),
        })
        {
            using var answer = await http.PostAsync("completions", new StringContent(body, Encoding.UTF8, "application/json"));
            var error = JsonNode.Parse(await answer.Content.ReadAsStringAsync())!["error"]!;
            Assert.True(answer.StatusCode == status, $"{body}: {answer.StatusCode} {error}");
            Assert.Equal(param, error["param"]!.GetValue<string>());
            Assert.Contains(says, error["message"]!.GetValue<string>());
        }
    }

    /// <summary>The generation call `inspect --greedy` makes, on the exported round, for a completion prompt, as text.</summary>
    private static string Greedy(ServedModel model, string prompt, int maxTokens)
    {
        var c = TextGenerator.Generate(model.Model, [model.CompletionPrompt(prompt)],
            new SamplingOptions { MaxNewTokens = maxTokens, Temperature = 0, StopTokenIds = [.. model.Tokenizer.Chat.StopIds] })[0];
        return model.Tokenizer.Decode(c.Stopped ? c.Tokens[..^1] : c.Tokens);
    }
}
