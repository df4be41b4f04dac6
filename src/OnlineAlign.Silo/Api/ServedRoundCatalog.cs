using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineAlign.Contracts;
using OnlineAlign.Serving;

namespace OnlineAlign.Silo.Api;

/// <summary>
/// The models a silo's OpenAI-compatible API (/v1 on the observability port) serves: every committed round of every run,
/// named "RUN@N" (round N; 0 is the initial policy) or "RUN" (the run's latest committed round). The name is resolved
/// here, from the run's own grain, to the round's checkpoint; the model itself is loaded and run by a
/// <see cref="IServedRoundGrain"/> on a GPU silo, never on this one. Refusals are OpenAI errors naming the field "model".
/// </summary>
public sealed class ServedRoundCatalog(IGrainFactory grains) : IModelCatalog
{
    /// <summary>The newest runs /v1/models looks at, and the most models it lists.</summary>
    public const int MaxRunsListed = 100, MaxModelsListed = 1000;

    public async Task<IReadOnlyList<ModelCard>> ListAsync(CancellationToken ct)
    {
        var registry = grains.GetGrain<IRunRegistryGrain>(0);
        int total = (await registry.Page(0, 0)).Total;
        var (ids, _) = await registry.Page(Math.Max(0, total - MaxRunsListed), MaxRunsListed);
        var cards = new List<ModelCard>();
        foreach (string run in Enumerable.Reverse(ids))
        {
            var committed = await Committed(grains.GetGrain<IRunGrain>(run));
            if (committed.Count == 0) continue;
            cards.Add(new ModelCard(run));
            cards.AddRange(committed.Select(r => new ModelCard(ServedRoundKeys.Name(run, r.Round))).Reverse());
            if (cards.Count >= MaxModelsListed) break;
        }
        return cards.Take(MaxModelsListed).ToList();
    }

    public async Task<ServedReply> StartAsync(bool chat, JsonObject body, CancellationToken ct)
    {
        string name = body["model"] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>()
            : throw new ServeException(400, "model", "model is required: a run id (its latest committed round) or RUN@N (its round N)");
        var (run, round) = Name(name);
        if (!RunIds.IsValid(run) || !await grains.GetGrain<IRunRegistryGrain>(0).Contains(run))
            throw NotFound($"model '{Shown(name)}': run '{Shown(run)}' does not exist");
        var runGrain = grains.GetGrain<IRunGrain>(run);
        var committed = await Committed(runGrain, withDeleted: true);
        var record = round is int n ? committed.FirstOrDefault(r => r.Round == n) : committed.LastOrDefault(r => !r.CheckpointDeleted);
        if (record is null)
            throw NotFound(round is int missing
                ? $"model '{name}': round {missing} of run '{run}' is not committed (committed: {string.Join(", ", committed.Select(r => r.Round))})"
                : $"model '{name}': run '{run}' has no committed round yet");
        if (record.CheckpointDeleted)
            throw NotFound($"model '{name}': round {record.Round}'s checkpoint was removed by the run's retention (retention.keep_last)");
        var initial = record.Round == 0 ? null : committed.FirstOrDefault(r => r.Round == 0);
        body["model"] = ServedRoundKeys.Name(run, record.Round); // the answer names the round it came from
        var call = new ServeCall
        {
            Chat = chat, Body = body.ToJsonString(), Checkpoint = new BlobRef { Path = record.ManifestPath, Sha256 = record.ManifestSha256 },
            Initial = initial is null || initial.CheckpointDeleted ? null : new BlobRef { Path = initial.ManifestPath, Sha256 = initial.ManifestSha256 },
        };
        var served = grains.GetGrain<IServedRoundGrain>(ServedRoundKeys.Of(run, record.Round, record.ManifestSha256));
        var items = served.Generate(call, ct).GetAsyncEnumerator(ct);
        try
        {
            if (!await items.MoveNextAsync()) throw new ServeException(500, null, "the served round answered nothing", "server_error");
            var head = items.Current;
            if (head.Status != 0) throw new ServeException(head.Status, head.Param, head.Message ?? "", head.ErrorType ?? "server_error");
            return new ServedReply(head.Model ?? call.Checkpoint.Path, head.PromptTokens, head.N, head.Stream, head.IncludeUsage, Deltas(items));
        }
        catch
        {
            await items.DisposeAsync();
            throw;
        }
    }

    /// <summary>The choices' pieces after the header; the grain's stream ends (and its generation stops) when this is disposed.</summary>
    private static async IAsyncEnumerable<ChoiceDelta> Deltas(IAsyncEnumerator<ServeChunk> items)
    {
        try
        {
            while (await items.MoveNextAsync())
            {
                var c = items.Current;
                yield return new ChoiceDelta(c.Index, c.Text, c.FinishReason, c.Generated);
            }
        }
        finally { await items.DisposeAsync(); }
    }

    /// <summary>Round 0 (once evaluated) and the committed rounds, in round order; without those retention deleted unless asked.</summary>
    private static async Task<List<RoundRecord>> Committed(IRunGrain run, bool withDeleted = false)
    {
        var rounds = new List<RoundRecord>();
        if (await run.Initial() is { } initial) rounds.Add(initial with { Round = 0 });
        rounds.AddRange(await run.Rounds());
        return rounds.Where(r => withDeleted || !r.CheckpointDeleted).OrderBy(r => r.Round).ToList();
    }

    /// <summary>"RUN" (round null: the latest) or "RUN@N"; anything else is refused naming the field.</summary>
    private static (string Run, int? Round) Name(string name)
    {
        int at = name.IndexOf('@', StringComparison.Ordinal);
        if (at < 0) return (name, null);
        string round = name[(at + 1)..];
        if (round.Length is 0 or > 9 || !int.TryParse(round, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            throw new ServeException(400, "model", $"model '{Shown(name)}' is not RUN or RUN@N (N: a committed round, 0 the initial policy)");
        return (name[..at], n);
    }

    private static string Shown(string s) => s.Length > RunIds.MaxLength + 12 ? s[..(RunIds.MaxLength + 12)] + "..." : s;

    private static ServeException NotFound(string message) => new(404, "model", message, "model_not_found");
}
