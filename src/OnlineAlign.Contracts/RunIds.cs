namespace OnlineAlign.Contracts;

/// <summary>
/// What a run id may be. Run ids become blob paths (runs/&lt;id&gt;/...) and local folder names, so every grain
/// that is handed one checks it before it touches storage: a grain can be called by any cluster member, not only
/// through the API that makes the ids.
/// </summary>
public static class RunIds
{
    public const int MaxLength = 128;

    /// <summary>1 to 128 characters from [A-Za-z0-9._-], not starting with '.' (so never "." or "..").</summary>
    public static bool IsValid(string? id) =>
        !string.IsNullOrEmpty(id) && id.Length <= MaxLength && id[0] != '.'
        && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    /// <summary>The id, or an <see cref="ArgumentException"/> saying what a run id may be.</summary>
    public static string Require(string? id) => IsValid(id) ? id!
        : throw new ArgumentException($"run id '{(id is null ? "" : id.Length > MaxLength ? id[..MaxLength] + "..." : id)}' is not valid: " +
                                      $"1 to {MaxLength} characters from [A-Za-z0-9._-], not starting with '.'");
}
