using System.Collections.Concurrent;
using OnlineAlign.Alignment.Judges;

namespace OnlineAlign.Grains.Judging;

/// <summary>
/// A round's remote judgements: the ones the cache holds for the same request are reused, the others are asked with at most
/// judge.concurrency in flight, batch by batch, and each batch's answers are kept before the next batch starts (and, when a
/// request fails for good, the answers already in are kept before the failure goes up), so a retried or resumed phase asks
/// only what was never answered and reads the same answers, hence the same scores.
/// </summary>
public static class RemoteJudging
{
    /// <summary>What a phase reports besides the scores.</summary>
    public sealed record Outcome(string[] Answers, int Cached, int Requests, int Retries);

    /// <param name="afterBatch">called after each batch is kept, with the answers so far (progress; a test's fault point)</param>
    public static async Task<Outcome> RunAsync(IReadOnlyList<JudgeRequest> requests, RemoteJudgeClient client, IJudgementCache cache, int concurrency,
        Func<int, Task> afterBatch, CancellationToken ct)
    {
        var known = await cache.LoadAsync(ct);
        var answers = new string?[requests.Count];
        var todo = new List<int>();
        for (int i = 0; i < requests.Count; i++)
        {
            if (known.TryGetValue(requests[i].Key, out var kept) && kept.Request == CachedJudgement.RequestHash(requests[i])) answers[i] = kept.Answer;
            else todo.Add(i);
        }
        int cached = requests.Count - todo.Count, done = cached;
        // A batch a few times the concurrency keeps every connection busy while bounding what a crash can lose.
        int batchSize = Math.Max(16, concurrency * 4);
        foreach (var batch in todo.Chunk(batchSize))
        {
            var answered = new ConcurrentQueue<CachedJudgement>();
            try
            {
                await Parallel.ForEachAsync(batch, new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = ct }, async (i, token) =>
                {
                    string answer = await client.AskAsync(requests[i], token);
                    answers[i] = answer;
                    answered.Enqueue(new CachedJudgement(requests[i].Key, CachedJudgement.RequestHash(requests[i]), answer));
                });
            }
            finally
            {
                // Kept even when the batch failed or was cancelled: those answers were paid for. A cache that cannot be written
                // while the phase is already failing must not hide why it failed.
                if (!answered.IsEmpty)
                {
                    try { await cache.SaveAsync([.. answered.OrderBy(a => a.Key, StringComparer.Ordinal)], CancellationToken.None); }
                    catch (Exception) when (answered.Count < batch.Length) { }
                }
            }
            done += batch.Length;
            await afterBatch(done);
        }
        return new Outcome([.. answers.Select(a => a!)], cached, client.Requests, client.Retries);
    }
}
