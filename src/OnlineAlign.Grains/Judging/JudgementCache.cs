using System.Security.Cryptography;
using System.Text;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Grains.Workers;
using OnlineAlign.Specs;
using OnlineAlign.Storage;

namespace OnlineAlign.Grains.Judging;

/// <summary>
/// A remote judge's answer as the round's cache holds it: its place (prompt/sample/judgement), the hash of what was asked
/// (the judge prompt and the seed: an entry is used only for the very same request) and the answer's text.
/// </summary>
public sealed record CachedJudgement(string Key, string Request, string Answer)
{
    public static string RequestHash(JudgeRequest r) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{r.Seed}\n{r.Text}")))[..32];
}

/// <summary>Where a round's remote judgements are kept, so that a retried or resumed judge phase never asks again.</summary>
public interface IJudgementCache
{
    /// <summary>Every judgement kept so far, by key.</summary>
    Task<IReadOnlyDictionary<string, CachedJudgement>> LoadAsync(CancellationToken ct);
    /// <summary>Keeps a batch of answers (each batch its own write-once blob: a batch is never half written).</summary>
    Task SaveAsync(IReadOnlyList<CachedJudgement> batch, CancellationToken ct);
}

/// <summary>
/// The cache in the run's storage, beside the judge phase's outputs: runs/ID/round-NNNN/judge/remote-CONFIG/BATCH.json, where
/// CONFIG hashes what the answers depend on besides the request (endpoint, model, temperature, length), so a spec changed on
/// resume asks again rather than reusing another judge's answers. Batches are write-once blobs with their sha256 checked on read.
/// </summary>
public sealed class BlobJudgementCache(CheckpointStore store, string runId, int round, JudgeSpec judge) : IJudgementCache
{
    private string Folder => $"runs/{runId}/round-{round:D4}/judge/" +
        $"remote-{PhaseBlobs.Key("remote-judge", new { judge.Endpoint, judge.RemoteModel, judge.Temperature, judge.MaxNewTokens })}";

    public async Task<IReadOnlyDictionary<string, CachedJudgement>> LoadAsync(CancellationToken ct)
    {
        var all = new Dictionary<string, CachedJudgement>();
        foreach (var name in (await store.ListAsync(Folder + "/", ct)).Order(StringComparer.Ordinal))
        {
            var bytes = await store.TryReadAsync(name, ct);
            if (bytes is null) continue;
            foreach (var entry in PhaseBlobs.Read<List<CachedJudgement>>(bytes, $"judgement cache {name}")) all.TryAdd(entry.Key, entry);
        }
        return all;
    }

    public async Task SaveAsync(IReadOnlyList<CachedJudgement> batch, CancellationToken ct) =>
        await store.WriteOnceAsync($"{Folder}/{Guid.NewGuid():N}.json", PhaseBlobs.Bytes(batch), ct);
}
