using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Contracts;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// How phase outputs look in blob storage (JSON; NaN allowed, doubles round-trip exactly so a phase read
/// back gives the next phase the very numbers it would have had in memory), and the key that names a
/// phase's "done" marker: a hash of everything the phase's output depends on.
/// </summary>
public static class PhaseBlobs
{
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static byte[] Bytes<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Json);

    /// <summary>Writes a phase output as a stream (the same bytes as <see cref="Bytes"/>, without one array of them all).</summary>
    public static Func<Stream, CancellationToken, Task> Writer<T>(T value) =>
        (stream, ct) => JsonSerializer.SerializeAsync(stream, value, Json, ct);

    /// <summary>Reads a phase output from a stream.</summary>
    public static Func<Stream, CancellationToken, Task<T>> Reader<T>(string what) => async (stream, ct) =>
        await JsonSerializer.DeserializeAsync<T>(stream, Json, ct) ?? throw new InvalidDataException($"{what} is empty");

    public static T Read<T>(byte[] bytes, string what) =>
        JsonSerializer.Deserialize<T>(bytes, Json) ?? throw new InvalidDataException($"{what} is empty");

    public static JudgeOutcome Judged(byte[] bytes) => Read<JudgeOutcome>(bytes, "judge output");
    public static PairsOutcome Pairs(byte[] bytes) => Read<PairsOutcome>(bytes, "pairs output");
    public static PhaseOutput Output(byte[] bytes) => Read<PhaseOutput>(bytes, "phase marker");

    /// <summary>The first 16 hex digits of the sha256 of the phase's name and request.</summary>
    public static string Key<T>(string phase, T request) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(new { phase, request }, Json)))[..16];
}
