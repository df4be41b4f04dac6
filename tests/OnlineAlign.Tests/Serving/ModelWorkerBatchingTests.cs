using System.Threading.Channels;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Serving;

namespace OnlineAlign.Tests.Serving;

/// <summary>
/// Concurrent requests decode together in one batch of the round engine, and each gets exactly what it gets served
/// alone: its own temperature, top_p, max_tokens, stop sequences and seeds, whatever it is batched with (the built-in
/// tiny model, random weights, byte tokenizer).
/// </summary>
public sealed class ModelWorkerBatchingTests : IDisposable
{
    private readonly ServedModel _model;
    private readonly ByteTokenizer _tokenizer = new();

    public ModelWorkerBatchingTests()
    {
        var lm = BuiltinModels.Create(BuiltinModels.Tiny, seed: 11);
        lm.eval();
        _model = new ServedModel(lm, _tokenizer, "tiny");
    }

    public void Dispose() => _model.Dispose();

    private sealed record Choice(string Text, string? FinishReason, int Generated);

    private GenerationRequest Request(string prompt, int maxTokens, double temperature, double topP, int n, ulong seed, params string[] stop) =>
        new([_tokenizer.BosId, .. _tokenizer.Encode(prompt)], maxTokens, temperature, topP, n,
            [.. Enumerable.Range(0, n).Select(i => seed + (ulong)i)], stop, Stream: true, IncludeUsage: false);

    private static async Task<Choice[]> Collect(ChannelReader<ChoiceDelta> reader, int n)
    {
        var texts = Enumerable.Range(0, n).Select(_ => "").ToArray();
        var ends = new string?[n];
        var generated = new int[n];
        await foreach (var d in reader.ReadAllAsync())
        {
            Assert.Null(ends[d.Index]);   // nothing after a choice's end
            texts[d.Index] += d.Text;
            ends[d.Index] = d.FinishReason;
            generated[d.Index] = d.Generated;
        }
        return [.. Enumerable.Range(0, n).Select(i => new Choice(texts[i], ends[i], generated[i]))];
    }

    private static async Task<Choice[]> Alone(ModelWorker worker, GenerationRequest request) =>
        await Collect(worker.Generate(request, CancellationToken.None), request.N);

    [Fact]
    public async Task ConcurrentRequestsDecodeInOneBatchAndEachEqualsItselfServedAlone()
    {
        using var worker = new ModelWorker(_model);
        // A stop sequence taken from the middle of the request's own unstopped answer, so it really cuts it.
        var unstopped = (await Alone(worker, Request("stop me", 24, 0.8, 1.0, 1, 77)))[0].Text;
        string stop = unstopped.Skip(3).First(ch => ch != '\uFFFD' && !char.IsSurrogate(ch)).ToString();
        GenerationRequest[] requests =
        [
            Request("hello there", 12, 0, 1.0, 1, 1),                 // greedy
            Request("the quick brown fox", 20, 1.0, 0.9, 3, 5),       // three sampled choices, top_p
            Request("stop me", 24, 0.8, 1.0, 1, 77, stop),            // a stop sequence ends only this choice
            Request("a", 5, 1.3, 0.5, 2, 1234),                       // a short limit
            Request("hello there", 16, 0.7, 1.0, 1, 9),               // the same prompt as the first, another setting
        ];
        var alone = new List<Choice[]>();
        foreach (var r in requests) alone.Add(await Alone(worker, r));
        Assert.Equal(requests.Length + 1, worker.Batches);   // alone: one batch each
        Assert.Equal("stop", alone[2][0].FinishReason);
        Assert.True(alone[2][0].Text.Length < unstopped.Length, $"'{alone[2][0].Text}' vs '{unstopped}'");
        Assert.Contains(alone.SelectMany(c => c), c => c.FinishReason == "length" && c.Generated > alone[2][0].Generated);

        // Held at the gate, the requests queue; when it opens the thread takes them all in one wave. Reversed order: a
        // request's rows sit elsewhere in the batch, which must not matter (seeds are the request's, not the row's).
        using var gate = new ManualResetEventSlim(false);
        worker.Gate = gate;
        int before = worker.Batches;
        // A request whose choices have all ended is answered while the batch decodes on (requests still open, per token).
        int fewestOpen = int.MaxValue;
        worker.TokenPicked = _ => fewestOpen = Math.Min(fewestOpen, worker.Waiting);
        var readers = Enumerable.Reverse(requests).Select(r => (r, worker.Generate(r, CancellationToken.None))).ToList();
        Assert.Equal(requests.Length, worker.Waiting);
        gate.Set();
        var batched = new Dictionary<GenerationRequest, Choice[]>();
        foreach (var (r, reader) in readers) batched[r] = await Collect(reader, r.N);
        Assert.Equal(before + 1, worker.Batches);
        for (int i = 0; i < requests.Length; i++) Assert.Equal(alone[i], batched[requests[i]]);
        Assert.Equal(0, worker.Waiting);
        Assert.True(fewestOpen < requests.Length - 1, $"at most one request answered before the batch ended ({fewestOpen} still open)");
    }

    [Fact]
    public async Task AClientGoneStopsItsRowsWithoutDisturbingTheOthers()
    {
        using var worker = new ModelWorker(_model);
        var longOne = Request("keep going", 100, 0, 1.0, 1, 3);
        var others = new[] { Request("other", 20, 1.0, 0.95, 2, 40), Request("another one", 14, 0, 1.0, 1, 8) };
        var longAlone = (await Alone(worker, longOne))[0];
        Assert.Equal(("length", 100), (longAlone.FinishReason, longAlone.Generated));   // uncancelled, it runs to its limit
        var othersAlone = new List<Choice[]>();
        foreach (var r in others) othersAlone.Add(await Alone(worker, r));

        // The long request's client goes away at its first token, on the model thread itself (no timing): its row ends at the next.
        using var gone = new CancellationTokenSource();
        worker.TokenPicked = request => { if (ReferenceEquals(request, longOne)) gone.Cancel(); };
        using var gate = new ManualResetEventSlim(false);
        worker.Gate = gate;
        long tokensBefore = worker.Stats.NewTokens;
        var longReader = worker.Generate(longOne, gone.Token);
        var readers = others.Select(r => worker.Generate(r, CancellationToken.None)).ToList();
        gate.Set();
        var cut = await Collect(longReader, 1);
        for (int i = 0; i < others.Length; i++) Assert.Equal(othersAlone[i], await Collect(readers[i], others[i].N));
        Assert.Null(cut[0].FinishReason);   // no end is sent to a client that left
        Assert.True(cut[0].Generated <= 1, $"{cut[0].Generated} tokens after the client left");
        // The long row stopped costing compute: the batch made far fewer than its 100 tokens beyond the others'.
        long batchTokens = worker.Stats.NewTokens - tokensBefore;
        int othersTokens = othersAlone.SelectMany(c => c).Sum(c => c.Generated);
        Assert.True(batchTokens < othersTokens + 50, $"{batchTokens} tokens for {othersTokens} of the others'");

        // A request whose client left while it was queued is never decoded.
        int batches = worker.Batches;
        worker.Gate = null;
        var early = worker.Generate(longOne, gone.Token);
        await foreach (var _ in early.ReadAllAsync()) Assert.Fail("a request whose client left got text");
        Assert.Equal(batches, worker.Batches);
    }

    [Fact]
    public async Task TheBatchBudgetSplitsAWaveAndARequestBiggerThanItRunsAlone()
    {
        using var worker = new ModelWorker(_model, new ServeLimits { MaxBatchRows = 4 });
        using var gate = new ManualResetEventSlim(false);
        worker.Gate = gate;
        // 2 + 2 rows fit a wave; the 5-row request is over the budget and runs alone; the last 1-row request waits for the
        // next wave (arrival order is kept: it does not jump ahead).
        GenerationRequest[] requests =
            [Request("one", 6, 1.0, 1.0, 2, 1), Request("two", 6, 1.0, 1.0, 2, 2), Request("three", 6, 1.0, 1.0, 5, 3), Request("four", 6, 0, 1.0, 1, 4)];
        var readers = requests.Select(r => worker.Generate(r, CancellationToken.None)).ToList();
        gate.Set();
        var batched = new List<Choice[]>();
        for (int i = 0; i < requests.Length; i++) batched.Add(await Collect(readers[i], requests[i].N));
        Assert.Equal(3, worker.Batches);
        worker.Gate = null;
        for (int i = 0; i < requests.Length; i++) Assert.Equal(await Alone(worker, requests[i]), batched[i]);
    }

    /// <summary>
    /// A long prompt and a long reply from different requests share a batch even though the batch's KV columns (the
    /// longest prompt + the longest reply) outnumber the model's context: positions count each row's own tokens.
    /// </summary>
    [Fact]
    public async Task ALongPromptAndALongReplyFromDifferentRequestsShareABatchPastTheContext()
    {
        using var worker = new ModelWorker(_model);
        var longPrompt = Request(new string('x', 50) + "a long prompt of a hundred bytes, near the context" , 20, 0, 1.0, 1, 1);
        var longReply = Request("hi", 120, 1.0, 1.0, 1, 2);
        Assert.True(longPrompt.Prompt.Length + longReply.MaxTokens > _model.Context);
        Assert.True(longPrompt.Prompt.Length + longPrompt.MaxTokens <= _model.Context && longReply.Prompt.Length + longReply.MaxTokens <= _model.Context);
        var alone = new[] { await Alone(worker, longPrompt), await Alone(worker, longReply) };
        using var gate = new ManualResetEventSlim(false);
        worker.Gate = gate;
        var readers = new[] { worker.Generate(longPrompt, CancellationToken.None), worker.Generate(longReply, CancellationToken.None) };
        gate.Set();
        Assert.Equal(alone[0], await Collect(readers[0], 1));
        Assert.Equal(alone[1], await Collect(readers[1], 1));
        Assert.Equal(3, worker.Batches);
    }
}
