using System.Net;

namespace OnlineAlign.Serving;

/// <summary>
/// Whether a server may start with its listen address and key: the silo's rule (its ApiExposure, which reads the silo's own
/// settings types and so is not shared): on loopback a key is optional; on any other address one is required, at least
/// 32 characters and not a template's placeholder.
/// </summary>
public static class ServeExposure
{
    public const int MinimumKeyLength = 32;

    /// <summary>Why serving with these settings is unsafe, or null when it is fine.</summary>
    public static string? Problem(string listen, string? apiKey)
    {
        if (!IPAddress.TryParse(listen, out var address)) return $"--listen '{listen}' is not an IP address";
        string key = apiKey ?? "";
        if (IPAddress.IsLoopback(address) && key.Length == 0) return null;
        if (key.Length == 0)
            return $"--listen {listen} is reachable from the network: set --api-key or ONLINEALIGN_API_KEY to a random string of at least " +
                   $"{MinimumKeyLength} characters (e.g. `openssl rand -hex 32`), or listen on 127.0.0.1";
        if (IPAddress.IsLoopback(address)) return null; // a key on loopback is the user's choice; any key is enforced
        if (key.Length < MinimumKeyLength)
            return $"the API key is {key.Length} characters long; a server listening on {listen} needs at least {MinimumKeyLength} (e.g. `openssl " +
                $"rand -hex 32`)";
        if (key.IndexOfAny(['<', '>', ' ']) >= 0 || key.Distinct().Count() <= 2 ||
            key.Contains("change", StringComparison.OrdinalIgnoreCase) || key.Contains("random", StringComparison.OrdinalIgnoreCase))
            return "the API key looks like a template's placeholder (it holds '<', '>', spaces or one repeated character): replace it with a random string";
        return null;
    }
}
