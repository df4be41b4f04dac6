namespace OnlineAlign.Contracts;

/// <summary>The cluster already has as many runs in progress as it allows (gRPC: RESOURCE_EXHAUSTED).</summary>
[GenerateSerializer]
public sealed class RunLimitException(string message) : Exception(message);
