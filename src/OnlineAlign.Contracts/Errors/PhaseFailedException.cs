namespace OnlineAlign.Contracts;

/// <summary>
/// A phase failed with an error that is not known to be transient (a bug, CUDA out of memory, a judge that
/// cannot be parsed): with the same inputs it will most likely fail again, so attempts are counted.
/// </summary>
[GenerateSerializer]
public sealed class PhaseFailedException(string message) : Exception(message);
