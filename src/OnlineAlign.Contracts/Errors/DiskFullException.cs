namespace OnlineAlign.Contracts;

/// <summary>
/// A phase ran out of space: a silo's local disk or blob storage is full (the message says which and where).
/// Not transient: retrying at once fills the same disk again, so attempts are counted as for a deterministic failure.
/// </summary>
[GenerateSerializer]
public sealed class DiskFullException(string message) : Exception(message);
