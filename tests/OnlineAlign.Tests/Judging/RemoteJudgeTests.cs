using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Grains.Judging;
using OnlineAlign.Specs;
using OnlineAlign.Tests.Alignment;

namespace OnlineAlign.Tests.Judging;

/// <summary>
/// judge.kind remote without a cluster: the official OpenAI client against a real loopback HTTP server that fails on purpose
/// (429, 500, 400, a hung request, bodies that are not JSON or not a completion, answers without a score), and the round's
/// judgement cache (in memory here; in storage on a silo: RemoteJudgeClusterTests).
/// </summary>
public sealed class RemoteJudgeTests
{
    private const string Key = "sk-test-5d1c9e7a";

    private static JudgeSpec Spec(string url, int attempts = 3, int judgements = 2, int timeout = 30, int concurrency = 4) => new()
    {
        Kind = "remote", Endpoint = url, RemoteModel = "judge-model", Judgements = judgements, MaxAttempts = attempts,
        TimeoutSeconds = timeout, Concurrency = concurrency, Temperature = 0.5, MaxNewTokens = 64, Template = "rubric",
    };

    private static RemoteJudgeClient Client(JudgeSpec spec) => new(spec, Key, backoff: TimeSpan.FromMilliseconds(5), maxBackoff: TimeSpan.FromMilliseconds(50));

    /// <summary>The answers to a round of 3 prompts x 2 samples, scored as the worker scores them.</summary>
    private static async Task<(JudgeResult Result, RemoteJudging.Outcome Outcome)> Judge(JudgeSpec spec, IJudgementCache? cache = null)
    {
        var groups = JudgeTestData.Groups(3, 2);
        var requests = RemoteJudgements.Requests(groups, spec.RemoteTemplate(), spec.Judgements, runSeed: 7, round: 1);
        var outcome = await RemoteJudging.RunAsync(requests, Client(spec), cache ?? new MemoryCache(), spec.Concurrency, _ => Task.CompletedTask, default);
        return (RemoteJudgements.Scores(groups, spec.Judgements, outcome.Answers), outcome);
    }

    /// <summary>A score from the request's seed (0 to 5): the same request always gets the same answer.</summary>
    private static string SeededScore(System.Text.Json.Nodes.JsonObject body) => $"Fine. Score: {(long)body["seed"]! % 6}";

    [Fact]
    public async Task EachJudgementIsAskedWithItsSeedAndAnAnswerWithoutAScoreIsCountedNotScored()
    {
        // Response "10" (prompt 1, sample 0) gets answers without a score; everything else gets one.
        await using var server = await FakeJudgeServer.StartAsync((_, body, context) =>
        {
            string text = (string)body["messages"]![0]!["content"]!;
            return FakeJudgeServer.Answer(context, text.Contains("<response>10</response>") ? "I would rather not say." : SeededScore(body));
        });
        var (result, outcome) = await Judge(Spec(server.Url));

        Assert.Equal(12, server.Count); // 3 prompts x 2 samples x 2 judgements, each once
        Assert.Equal(12, outcome.Requests);
        Assert.Equal(0, outcome.Retries);
        Assert.Equal(2, result.ParseFailures);
        Assert.True(double.IsNaN(result.Scores[1][0])); // unscored, never a made-up score
        Assert.Equal(5, result.Scores.SelectMany(r => r).Count(double.IsFinite));
        var seen = server.Seen.ToList();
        Assert.All(seen, s => Assert.Equal("Bearer " + Key, s.Authorization));
        Assert.All(seen, s => Assert.Equal("judge-model", (string)s.Body["model"]!));
        Assert.All(seen, s => Assert.Equal(0.5, (double)s.Body["temperature"]!, 6));
        Assert.All(seen, s => Assert.StartsWith("Review the user's question", (string)s.Body["messages"]![0]!["content"]!));
        // Every judgement its own seed; the same round asks with the same seeds again.
        Assert.Equal(12, seen.Select(s => (long)s.Body["seed"]!).Distinct().Count());
        var again = RemoteJudgements.Requests(JudgeTestData.Groups(3, 2), "rubric", 2, 7, 1).Select(r => r.Seed).Order();
        Assert.Equal(again, seen.Select(s => (long)s.Body["seed"]!).Order());
        Assert.NotEqual(again, RemoteJudgements.Requests(JudgeTestData.Groups(3, 2), "rubric", 2, 7, 2).Select(r => r.Seed).Order());
    }

    [Fact]
    public async Task TooManyRequestsThenOkIsRetriedAndScored()
    {
        await using var server = await FakeJudgeServer.StartAsync((n, body, context) =>
            n <= 2 ? FakeJudgeServer.Status(context, 429, retryAfter: "0") : FakeJudgeServer.Answer(context, SeededScore(body)));
        var (result, outcome) = await Judge(Spec(server.Url, attempts: 3, concurrency: 1));
        Assert.Equal(14, server.Count);
        Assert.Equal(2, outcome.Retries);
        Assert.Equal(0, result.ParseFailures);
        Assert.All(result.Scores.SelectMany(r => r), v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public async Task A500OnEveryAttemptFailsNamingTheEndpointTheStatusAndTheAttempts()
    {
        await using var server = await FakeJudgeServer.StartAsync((_, _, context) => FakeJudgeServer.Status(context, 500));
        var e = await Assert.ThrowsAsync<RemoteJudgeException>(() => Judge(Spec(server.Url, attempts: 3, concurrency: 1)));
        Assert.Contains(server.Url, e.Message);
        Assert.Contains("HTTP 500", e.Message);
        Assert.Contains("after 3 attempts (judge.max_attempts)", e.Message);
        Assert.Equal(3, server.Count); // the first judgement's attempts, then the phase stops asking
    }

    [Fact]
    public async Task AStatusThatWouldNotChangeFailsAtOnce()
    {
        await using var server = await FakeJudgeServer.StartAsync((_, _, context) => FakeJudgeServer.Status(context, 404));
        var e = await Assert.ThrowsAsync<RemoteJudgeException>(() => Judge(Spec(server.Url, attempts: 5, concurrency: 1)));
        Assert.Contains($"judge endpoint {server.Url} (model 'judge-model') answered HTTP 404", e.Message);
        Assert.Equal(1, server.Count);
    }

    [Fact]
    public async Task AHungRequestTimesOutAndIsAskedAgain()
    {
        // The first request never answers (until the client gives up on it); the rest answer at once.
        await using var server = await FakeJudgeServer.StartAsync(async (n, body, context) =>
        {
            if (n == 1) { try { await Task.Delay(Timeout.Infinite, context.RequestAborted); } catch (OperationCanceledException) { } return; }
            await FakeJudgeServer.Answer(context, SeededScore(body));
        });
        var (result, outcome) = await Judge(Spec(server.Url, timeout: 1, concurrency: 1));
        Assert.Equal(13, outcome.Requests);
        Assert.Equal(1, outcome.Retries);
        Assert.All(result.Scores.SelectMany(r => r), v => Assert.True(double.IsFinite(v)));

        await using var hung = await FakeJudgeServer.StartAsync(async (_, _, context) =>
        {
            try { await Task.Delay(Timeout.Infinite, context.RequestAborted); } catch (OperationCanceledException) { }
        });
        var e = await Assert.ThrowsAsync<RemoteJudgeException>(() => Judge(Spec(hung.Url, attempts: 2, timeout: 1, concurrency: 1)));
        Assert.Contains("no answer within judge.timeout_seconds 1, after 2 attempts", e.Message);
    }

    [Theory]
    [InlineData("{\"choices\": [ {\"message\": ")]   // cut off
    [InlineData("<html>502 Bad Gateway</html>")]     // a proxy's page with a 200
    [InlineData("{}")]                               // JSON, but no completion
    [InlineData("{\"choices\": []}")]                 // a completion without a choice
    public async Task ABodyThatIsNotAChatCompletionIsRetriedAndNeverScored(string body)
    {
        await using var server = await FakeJudgeServer.StartAsync((n, json, context) =>
        {
            if (n > 1) return FakeJudgeServer.Answer(context, SeededScore(json));
            context.Response.ContentType = "application/json";
            return context.Response.WriteAsync(body);
        });
        var (result, outcome) = await Judge(Spec(server.Url, concurrency: 1));
        Assert.Equal(1, outcome.Retries);
        Assert.Equal(0, result.ParseFailures);

        await using var broken = await FakeJudgeServer.StartAsync((_, _, context) => { context.Response.ContentType = "application/json"; return context.Response.WriteAsync(body); });
        var e = await Assert.ThrowsAsync<RemoteJudgeException>(() => Judge(Spec(broken.Url, attempts: 2, concurrency: 1)));
        Assert.Contains("not a chat completion", e.Message);
        Assert.Equal(2, broken.Count);
    }

    [Fact]
    public async Task ASecondPassOverTheSameRoundAsksNothingAndGetsTheSameScores()
    {
        var cache = new MemoryCache();
        await using var server = await FakeJudgeServer.StartAsync((_, body, context) => FakeJudgeServer.Answer(context, SeededScore(body)));
        var (first, firstOutcome) = await Judge(Spec(server.Url), cache);
        Assert.Equal(12, server.Count);
        Assert.Equal(0, firstOutcome.Cached);

        var (second, secondOutcome) = await Judge(Spec(server.Url), cache);
        Assert.Equal(12, server.Count); // no request at all
        Assert.Equal(0, secondOutcome.Requests);
        Assert.Equal(12, secondOutcome.Cached);
        Assert.Equal(first.Scores.SelectMany(r => r), second.Scores.SelectMany(r => r));
    }

    [Fact]
    public async Task APhaseThatFailedMidwayKeepsWhatWasAnsweredAndAskedAgainAsksOnlyTheRest()
    {
        var cache = new MemoryCache();
        // Judgement 5 fails for good the first time round; the 4 answered before it are kept.
        await using var failing = await FakeJudgeServer.StartAsync((n, body, context) =>
            n == 5 ? FakeJudgeServer.Status(context, 400) : FakeJudgeServer.Answer(context, SeededScore(body)));
        await Assert.ThrowsAsync<RemoteJudgeException>(() => Judge(Spec(failing.Url, concurrency: 1), cache));
        Assert.Equal(4, cache.Entries.Count);

        await using var server = await FakeJudgeServer.StartAsync((_, body, context) => FakeJudgeServer.Answer(context, SeededScore(body)));
        var (resumed, outcome) = await Judge(Spec(server.Url, concurrency: 1), cache);
        Assert.Equal(4, outcome.Cached);
        Assert.Equal(8, server.Count);
        var (uninterrupted, _) = await Judge(Spec(server.Url, concurrency: 1));
        Assert.Equal(uninterrupted.Scores.SelectMany(r => r), resumed.Scores.SelectMany(r => r));
    }

    [Fact]
    public async Task ACachedAnswerToAnotherRequestIsNotUsed()
    {
        var cache = new MemoryCache();
        await using var server = await FakeJudgeServer.StartAsync((_, body, context) => FakeJudgeServer.Answer(context, SeededScore(body)));
        await Judge(Spec(server.Url), cache);
        // The same keys with other responses (the round's samples changed): every judgement is asked again.
        var groups = JudgeTestData.Groups(3, 2).Select(g => g with { ResponseTexts = [.. g.ResponseTexts.Select(t => t + "!")] }).ToList();
        var requests = RemoteJudgements.Requests(groups, "rubric", 2, 7, 1);
        var outcome = await RemoteJudging.RunAsync(requests, Client(Spec(server.Url)), cache, 4, _ => Task.CompletedTask, default);
        Assert.Equal(0, outcome.Cached);
        Assert.Equal(24, server.Count);
    }

    /// <summary>The round's cache as a list of batches in memory (the worker's is in blob storage).</summary>
    private sealed class MemoryCache : IJudgementCache
    {
        public ConcurrentDictionary<string, CachedJudgement> Entries { get; } = new();

        public Task<IReadOnlyDictionary<string, CachedJudgement>> LoadAsync(CancellationToken ct) =>
            Task.FromResult<IReadOnlyDictionary<string, CachedJudgement>>(new Dictionary<string, CachedJudgement>(Entries));

        public Task SaveAsync(IReadOnlyList<CachedJudgement> batch, CancellationToken ct)
        {
            foreach (var entry in batch) Entries[entry.Key] = entry;
            return Task.CompletedTask;
        }
    }
}
