namespace OnlineAlign.Contracts;

/// <summary>A checkpoint blob failed its sha256 check.</summary>
[GenerateSerializer]
public sealed class CheckpointCorruptException(string message) : Exception(message);
