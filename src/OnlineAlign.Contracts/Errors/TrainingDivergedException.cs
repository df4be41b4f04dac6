namespace OnlineAlign.Contracts;

/// <summary>Training produced NaN or Inf (the round and step are in the message); the run pauses.</summary>
[GenerateSerializer]
public sealed class TrainingDivergedException(string message) : Exception(message);
