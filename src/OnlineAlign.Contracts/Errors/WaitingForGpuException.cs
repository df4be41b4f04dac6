namespace OnlineAlign.Contracts;

/// <summary>No GPU silo has room for the run's memory plan beside the runs already placed: the run waits (waiting_for_gpu).</summary>
[GenerateSerializer]
public sealed class WaitingForGpuException(string message) : Exception(message);
