namespace OnlineAlign.Contracts;

/// <summary>Thrown for a transition that does not apply to the run's state (gRPC: FAILED_PRECONDITION).</summary>
[GenerateSerializer]
public sealed class RunStateException(string message) : Exception(message);
