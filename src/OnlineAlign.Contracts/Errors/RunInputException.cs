namespace OnlineAlign.Contracts;

/// <summary>The run's inputs (model folder, tokenizer, prompts) cannot be used; retrying will not help.</summary>
[GenerateSerializer]
public sealed class RunInputException(string message) : Exception(message);
