using System.Text.Json;

namespace OnlineAlign.Grains.Workers;

/// <summary>One replica's share of a round's responses, as stored in blob storage: prompt positions and token ids.</summary>
public sealed record GenerationShard(List<int> Positions, List<List<int[]>> Responses)
{
    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this);

    public static GenerationShard FromBytes(byte[] bytes) =>
        JsonSerializer.Deserialize<GenerationShard>(bytes) ?? throw new InvalidDataException("empty generation shard");

    /// <summary>Streams the shard (the same bytes as <see cref="ToBytes"/>: a round's responses may exceed one array's 2 GB).</summary>
    public Task WriteAsync(Stream stream, CancellationToken ct) => JsonSerializer.SerializeAsync(stream, this, cancellationToken: ct);

    public static async Task<GenerationShard> ReadAsync(Stream stream, CancellationToken ct) =>
        await JsonSerializer.DeserializeAsync<GenerationShard>(stream, cancellationToken: ct) ?? throw new InvalidDataException("empty generation shard");

    /// <summary>Puts the shards' responses back in prompt order; every position must be covered exactly once.</summary>
    public static List<IReadOnlyList<int[]>> Merge(IEnumerable<GenerationShard> shards, int prompts) =>
        [.. OnlineAlign.Alignment.Rounds.ShardPlan.Merge(shards.Select(s => ((IReadOnlyList<int>)s.Positions,
            (IReadOnlyList<IReadOnlyList<int[]>>)s.Responses)), prompts, "generation")];
}
