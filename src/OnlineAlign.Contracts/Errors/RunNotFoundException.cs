namespace OnlineAlign.Contracts;

/// <summary>Thrown for a run id nobody started (gRPC: NOT_FOUND).</summary>
[GenerateSerializer]
public sealed class RunNotFoundException(string runId) : Exception($"run '{runId}' does not exist");
