namespace OnlineAlign.Contracts;

/// <summary>A phase failed for a reason that may pass (storage unavailable, a timeout): retry with backoff.</summary>
[GenerateSerializer]
public sealed class TransientPhaseException(string message) : Exception(message);
