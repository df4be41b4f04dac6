using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace OnlineAlign.Silo.Api;

/// <summary>
/// What a silo's API may be exposed with. On loopback only the machine's own users can call it; on any other
/// address it is reachable by the network, so it needs a real API key (not a placeholder from a template).
/// </summary>
public static class ApiExposure
{
    public const int MinimumKeyLength = 32;

    /// <summary>Why the API settings are unsafe to start with, or null when they are fine.</summary>
    public static string? Problem(ApiSettings api)
    {
        if (api.Port == 0) return null;
        if (!IPAddress.TryParse(api.ListenAddress, out var address))
            return $"Api:ListenAddress '{api.ListenAddress}' is not an IP address";
        if (IPAddress.IsLoopback(address)) return null;
        string key = api.ApiKey ?? "";
        if (key.Length == 0)
            return $"the API would listen on {api.ListenAddress}, reachable from the network, without an API key: set ONLINEALIGN_API_KEY " +
                   $"to a random string of at least {MinimumKeyLength} characters (e.g. `openssl rand -hex 32`), or listen on 127.0.0.1";
        if (key.Length < MinimumKeyLength)
            return $"the API key is {key.Length} characters long; an API listening on {api.ListenAddress} needs at least {MinimumKeyLength} (e.g. " +
                $"`openssl rand -hex 32`)";
        if (LooksLikePlaceholder(key))
            return "the API key looks like a template's placeholder (it holds '<', '>', spaces or one repeated character): replace it with a random string";
        return null;
    }

    /// <summary>Why the observability port (metrics) is unsafe to start with: beyond loopback it needs the API key as well.</summary>
    public static string? Problem(ObservabilitySettings observability, ApiSettings api)
    {
        if (observability.Port == 0) return null;
        if (!IPAddress.TryParse(observability.ListenAddress, out var address))
            return $"Observability:ListenAddress '{observability.ListenAddress}' is not an IP address";
        if (IPAddress.IsLoopback(address)) return null;
        return Problem(new ApiSettings { ListenAddress = observability.ListenAddress, Port = observability.Port, ApiKey = api.ApiKey }) is { } problem
            ? "metrics: " + problem : null;
    }

    private static bool LooksLikePlaceholder(string key) =>
        key.IndexOfAny(['<', '>', ' ']) >= 0 || key.Distinct().Count() <= 2 ||
        key.Contains("change", StringComparison.OrdinalIgnoreCase) || key.Contains("random", StringComparison.OrdinalIgnoreCase);

    /// <summary>The TLS certificate from Api:CertificatePath (PEM with Api:CertificateKeyPath, or PKCS#12), or null for plain HTTP/2.</summary>
    public static X509Certificate2? Certificate(ApiSettings api)
    {
        if (string.IsNullOrEmpty(api.CertificatePath)) return null;
        if (!File.Exists(api.CertificatePath))
            throw new FileNotFoundException($"Api:CertificatePath '{api.CertificatePath}' does not exist", api.CertificatePath);
        if (!string.IsNullOrEmpty(api.CertificateKeyPath))
        {
            if (!File.Exists(api.CertificateKeyPath))
                throw new FileNotFoundException($"Api:CertificateKeyPath '{api.CertificateKeyPath}' does not exist", api.CertificateKeyPath);
            return X509Certificate2.CreateFromPemFile(api.CertificatePath, api.CertificateKeyPath);
        }
        return X509CertificateLoader.LoadPkcs12FromFile(api.CertificatePath, api.CertificatePassword);
    }
}
