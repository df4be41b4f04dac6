using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Serving;
using OnlineAlign.Tests.Infrastructure;
using OpenAI;
using OpenAI.Chat;
using static TorchSharp.torch;
using ChatMessage = OpenAI.Chat.ChatMessage;

namespace OnlineAlign.Tests.Serving;

/// <summary>
/// `serve`'s OpenAI-compatible API driven by the official .NET OpenAI client (and raw HTTP where a field is checked), in
/// process on a free loopback port, over the built-in tiny model (random weights, byte tokenizer) saved as a folder.
/// </summary>
public sealed class ServeTests : IClassFixture<ServeTests.Server>
{
    private const string Key = "0f9c2a7e5b8d4c1a9e3f6b2d7a0c5e8f1b4d9a6c3e7f2b5a";

    public sealed class Server : IAsyncLifetime
    {
        public string Folder { get; } = RepositoryPaths.NewTempFolder("serve");
        public ServedModel Model { get; private set; } = null!;
        public ServeHost Host { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            using (var lm = BuiltinModels.Create(BuiltinModels.Tiny, seed: 11)) HfCheckpoint.Save(lm, Folder, new ByteTokenizer().HfFiles());
            Model = ServedModel.Load(Folder, CPU, "tiny-policy");
            Host = await ServeHost.StartAsync(Model, new ServeOptions { Port = 0, ApiKey = Key });
        }

        public async Task DisposeAsync()
        {
            await Host.DisposeAsync();
            Model.Dispose();
        }
    }

    private readonly Server _server;
    public ServeTests(Server server) => _server = server;

    private OpenAIClient Client(string key = Key) => new(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(_server.Host.Url) });
    private ChatClient Chat() => Client().GetChatClient("tiny-policy");

    private HttpClient Http(string? key = Key)
    {
        var http = new HttpClient { BaseAddress = new Uri(_server.Host.Url + "/") };
        if (key is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }

    private static async Task<(HttpStatusCode Status, JsonObject Body)> Post(HttpClient http, string path, string json)
    {
        using var response = await http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject());
    }

    /// <summary>What the generation call itself gives (the call `inspect --greedy` makes) for a completion prompt, as text.</summary>
    private string DirectGreedy(string prompt, int maxTokens)
    {
        using var lm = HfCheckpoint.Load(_server.Folder, CPU, ScalarType.Float32);
        var tokenizer = new ByteTokenizer();
        var c = TextGenerator.Generate(lm, [[tokenizer.BosId, .. tokenizer.Encode(prompt)]],
            new SamplingOptions { MaxNewTokens = maxTokens, Temperature = 0, StopTokenIds = [tokenizer.EosId] })[0];
        return tokenizer.Decode(c.Stopped ? c.Tokens[..^1] : c.Tokens);
    }

    [Fact]
    public async Task ModelsListsTheServedPolicy()
    {
        var models = (await Client().GetOpenAIModelClient().GetModelsAsync()).Value;
        Assert.Equal(["tiny-policy"], models.Select(m => m.Id));
    }

    [Fact]
    public async Task GreedyChatStreamedConcatenatesToTheWholeAnswerWhichIsTheEnginesOwn()
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 40 };
        ChatMessage[] messages = [new UserChatMessage("sort 3 1 2")];
        var whole = (await Chat().CompleteChatAsync(messages, options)).Value;
        string text = whole.Content.Count == 0 ? "" : whole.Content[0].Text;
        var streamed = new StringBuilder();
        ChatFinishReason? reason = null;
        int chunks = 0;
        await foreach (var update in Chat().CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ContentUpdate) { streamed.Append(part.Text); chunks++; }
            reason ??= update.FinishReason;
        }
        Assert.Equal(text, streamed.ToString());
        Assert.Equal(whole.FinishReason, reason);
        Assert.True(chunks > 1 || text.Length <= 1, $"the answer came in {chunks} chunk(s), not streamed");
        // A plain model's chat prompt is the user's text, so the answer is the engine's greedy continuation of it.
        Assert.Equal(DirectGreedy("sort 3 1 2", 40), text);
        if (whole.FinishReason == ChatFinishReason.Length) Assert.Equal(40, whole.Usage.OutputTokenCount);
        Assert.Equal(1 + "sort 3 1 2".Length, whole.Usage.InputTokenCount); // bos + bytes
    }

    [Fact]
    public async Task GreedyCompletionEqualsTheGenerationCallInspectMakes()
    {
        var (status, body) = await Post(Http(), "completions", """{"model": "tiny-policy", "prompt": "reverse abc", "max_tokens": 24, "temperature": 0}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var choice = body["choices"]![0]!;
        Assert.Equal(DirectGreedy("reverse abc", 24), choice["text"]!.GetValue<string>());
        Assert.Contains(choice["finish_reason"]!.GetValue<string>(), new[] { "stop", "length" });
        Assert.Equal("text_completion", body["object"]!.GetValue<string>());
        Assert.Equal(12, body["usage"]!["prompt_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task SeededSamplingIsReproducibleAndEachChoiceHasItsOwnGenerator()
    {
        ChatCompletionOptions Options(long seed)
        {
            var o = new ChatCompletionOptions { Temperature = 1.0f, MaxOutputTokenCount = 24 };
#pragma warning disable OPENAI001
            o.Seed = seed;
#pragma warning restore OPENAI001
            return o;
        }
        async Task<string[]> Sample(long seed)
        {
            // n is not on the typed options; ask for 3 choices through raw HTTP.
            var (status, body) = await Post(Http(), "chat/completions",
                $$"""{"model": "tiny-policy", "messages": [{"role": "user", "content": "hello"}], "n": 3, "seed": {{seed}}, "temperature": 1.0, "max_tokens": 24}""");
            Assert.Equal(HttpStatusCode.OK, status);
            return body["choices"]!.AsArray().Select(c => c!["message"]!["content"]!.GetValue<string>()).ToArray();
        }
        var first = await Sample(42);
        Assert.Equal(first, await Sample(42));
        Assert.Equal(3, first.Distinct().Count());
        Assert.NotEqual(first, await Sample(43));
        // The client's own seed parameter: the same seed, the same text; choice 0 of n=3 is the n=1 answer.
        var a = (await Chat().CompleteChatAsync([new UserChatMessage("hello")], Options(42))).Value.Content[0].Text;
        var b = (await Chat().CompleteChatAsync([new UserChatMessage("hello")], Options(42))).Value.Content[0].Text;
        Assert.Equal(a, b);
        Assert.Equal(first[0], a);
    }

    [Fact]
    public async Task StopSequencesCutTheAnswerAndEndItWithStop()
    {
        // A prompt whose greedy answer (random weights) has an ASCII character after its first two to stop at.
        var (prompt, greedy, at) = new[] { "abc", "sort 3 1 2", "hello", "reverse abc", "the cat", "12345" }
            .Select(p => DirectGreedy(p, 40)).Zip(new[] { "abc", "sort 3 1 2", "hello", "reverse abc", "the cat", "12345" }, (g, p) => (p, g, Enumerable.Range(2, Math.Max(0, g.Length - 2)).FirstOrDefault(i => g[i] < 128, -1)))
            .FirstOrDefault(x => x.Item3 >= 0, ("", "", -1));
        Assert.True(at >= 0, "no candidate prompt's greedy answer has an ASCII character to stop at");
        string stop = greedy[at].ToString();
        string expected = greedy[..greedy.IndexOf(stop, StringComparison.Ordinal)];
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 40 };
        options.StopSequences.Add("never-there");
        options.StopSequences.Add(stop);
        var whole = (await Chat().CompleteChatAsync([new UserChatMessage(prompt)], options)).Value;
        Assert.Equal(expected, whole.Content.Count == 0 ? "" : whole.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, whole.FinishReason);
        var streamed = new StringBuilder();
        await foreach (var update in Chat().CompleteChatStreamingAsync([new UserChatMessage(prompt)], options))
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        Assert.Equal(expected, streamed.ToString());
        // A completion's stop as a single string.
        var (_, body) = await Post(Http(), "completions", $$"""{"model": "tiny-policy", "prompt": {{JsonValue.Create(prompt).ToJsonString()}}, "max_tokens": 40, "temperature": 0, "stop": {{JsonValue.Create(stop).ToJsonString()}}}""");
        Assert.Equal(expected, body["choices"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("stop", body["choices"]![0]!["finish_reason"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{"model": "tiny-policy", "prompt": "hi", "max_tokens": 500}""", "completions", "max_tokens")]
    [InlineData("""{"model": "tiny-policy", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 0}""", "chat/completions", "max_completion_tokens")]
    [InlineData("""{"model": "tiny-policy", "prompt": "hi", "n": 17}""", "completions", "n")]
    [InlineData("""{"model": "tiny-policy", "prompt": "hi", "temperature": 3}""", "completions", "temperature")]
    [InlineData("""{"model": "tiny-policy", "prompt": "hi", "top_p": 0}""", "completions", "top_p")]
    [InlineData("""{"model": "tiny-policy", "prompt": "hi", "stop": [1]}""", "completions", "stop")]
    [InlineData("""{"model": "tiny-policy", "prompt": "hi", "seed": "x"}""", "completions", "seed")]
    [InlineData("""{"model": "tiny-policy", "messages": []}""", "chat/completions", "messages")]
    [InlineData("""{"model": "tiny-policy", "messages": [{"role": "robot", "content": "hi"}]}""", "chat/completions", "messages[0].role")]
    [InlineData("""{"model": "tiny-policy", "prompt": 5}""", "completions", "prompt")]
    public async Task BadValuesAreRefusedWith400NamingTheField(string json, string path, string param)
    {
        var (status, body) = await Post(Http(), path, json);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(param, body["error"]!["param"]!.GetValue<string>());
        Assert.Equal("invalid_request_error", body["error"]!["type"]!.GetValue<string>());
        Assert.Contains(param.Split('[')[0], body["error"]!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task APromptLongerThanTheContextATooManyMessagesListAndAnOversizedBodyAreRefused()
    {
        var (status, body) = await Post(Http(), "completions", $$"""{"model": "tiny-policy", "prompt": "{{new string('a', 200)}}"}""");
        Assert.Equal((HttpStatusCode.BadRequest, "prompt"), (status, body["error"]!["param"]!.GetValue<string>()));
        Assert.Contains("context is 128", body["error"]!["message"]!.GetValue<string>());
        var many = new JsonArray(Enumerable.Range(0, 300).Select(_ => (JsonNode)new JsonObject { ["role"] = "user", ["content"] = "x" }).ToArray());
        (status, body) = await Post(Http(), "chat/completions", new JsonObject { ["model"] = "tiny-policy", ["messages"] = many }.ToJsonString());
        Assert.Equal((HttpStatusCode.BadRequest, "messages"), (status, body["error"]!["param"]!.GetValue<string>()));
        (status, body) = await Post(Http(), "completions", $$"""{"model": "tiny-policy", "prompt": "{{new string('a', 2 << 20)}}"}""");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Contains("bytes", body["error"]!["message"]!.GetValue<string>());
        // The client sees the refusal as an error naming the field.
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Chat().CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { MaxOutputTokenCount = 5000 }));
        Assert.Equal(400, e.Status);
        Assert.Contains("max_completion_tokens", e.Message);
        (status, body) = await Post(Http(), "completions", """{"model": "gpt-4", "prompt": "hi"}""");
        Assert.Equal((HttpStatusCode.NotFound, "model"), (status, body["error"]!["param"]!.GetValue<string>()));
    }

    [Fact]
    public async Task TheKeyIsRequiredWhenSetAndOffLoopback()
    {
        var (status, body) = await Post(Http(key: null), "completions", """{"model": "tiny-policy", "prompt": "hi"}""");
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("authentication_error", body["error"]!["type"]!.GetValue<string>());
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Client("wrong-key").GetOpenAIModelClient().GetModelsAsync());
        Assert.Equal(401, e.Status);
        // Off loopback: no key, or a short one, and the server does not start.
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => ServeHost.StartAsync(_server.Model, new ServeOptions { Listen = "0.0.0.0", Port = 0 }));
        Assert.Contains("ONLINEALIGN_API_KEY", refused.Message);
        refused = await Assert.ThrowsAsync<InvalidOperationException>(() => ServeHost.StartAsync(_server.Model, new ServeOptions { Listen = "0.0.0.0", Port = 0, ApiKey = "short" }));
        Assert.Contains("at least 32", refused.Message);
        Assert.Null(ServeExposure.Problem("127.0.0.1", null));
    }

    [Fact]
    public async Task RequestsOverTheConcurrencyLimitGet429()
    {
        using var gate = new ManualResetEventSlim(false);
        await using var host = await ServeHost.StartAsync(_server.Model, new ServeOptions { Port = 0, Limits = new ServeLimits { MaxConcurrent = 1 } });
        host.Worker.Gate = gate; // the model thread waits here: the first request stays in progress until the gate opens
        using var http = new HttpClient { BaseAddress = new Uri(host.Url + "/") };
        var first = Post(http, "completions", """{"model": "tiny-policy", "prompt": "hi", "max_tokens": 2}""");
        while (host.Worker.Waiting == 0 && !first.IsCompleted) await Task.Delay(10);
        var (status, body) = await Post(http, "completions", """{"model": "tiny-policy", "prompt": "hi", "max_tokens": 2}""");
        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Contains("busy", body["error"]!["message"]!.GetValue<string>());
        gate.Set();
        Assert.Equal(HttpStatusCode.OK, (await first).Status);
    }
}
