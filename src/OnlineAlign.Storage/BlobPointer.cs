namespace OnlineAlign.Storage;

/// <summary>A pointer to a write-once blob with the hash its content must have.</summary>
public sealed record BlobPointer(string Path, string Sha256, long Size);

/// <summary>A blob whose content does not match the hash recorded when it was written.</summary>
public sealed class CorruptBlobException(string path, string expected, string actual)
    : Exception($"blob '{path}' is corrupt: sha256 {actual}, expected {expected}")
{
    public string Path { get; } = path;
}
