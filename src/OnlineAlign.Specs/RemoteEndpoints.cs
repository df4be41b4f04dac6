using System.Net;
using System.Net.Sockets;

namespace OnlineAlign.Specs;

/// <summary>
/// Where a remote judge may be asked (judge.endpoint comes from whoever starts a run, and the worker silo connects to it):
/// never link-local addresses (169.254.0.0/16 and fe80::/10, where cloud metadata services answer with credentials),
/// nor the known metadata addresses and names (fd00:ec2::254, 100.100.100.200, metadata.google.internal). Loopback and
/// private ranges stay allowed (a vLLM next to the silo is the common set-up) unless the silo's
/// Limits:RemoteJudgeAllowedHosts names the only hosts it may ask. Checked on the URL at the spec check, and on every
/// resolved address when the worker connects (so a name that resolves to a refused address later is refused too).
/// </summary>
public static class RemoteEndpoints
{
    private static readonly IPAddress[] MetadataAddresses = [IPAddress.Parse("fd00:ec2::254"), IPAddress.Parse("100.100.100.200")];
    private static readonly string[] MetadataNames = ["metadata.google.internal", "metadata.goog", "metadata"];

    /// <summary>Why a judge may not be asked at this address; null when it may.</summary>
    public static string? RefusedAddress(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (MetadataAddresses.Any(address.Equals)) return $"{address} is a cloud metadata service address";
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var bytes = address.GetAddressBytes();
            if (bytes[0] == 169 && bytes[1] == 254) return $"{address} is link-local (169.254.0.0/16, where cloud metadata services answer)";
        }
        else if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.IsIPv6LinkLocal)
            return $"{address} is link-local (fe80::/10)";
        return null;
    }

    /// <summary>The allow-list setting's hosts (comma-separated; empty or unset: any host not refused above).</summary>
    public static string[] AllowedHosts(string? setting) =>
        (setting ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Why <paramref name="field"/>'s URL may not be asked; null when it may (the URL is already absolute http or https).</summary>
    public static string? Problem(string field, Uri uri, string? allowedHosts)
    {
        if (uri.Scheme is not ("http" or "https")) return $"{field} '{uri.Scheme}://{uri.Authority}' is not http or https";
        string host = uri.IdnHost.Trim('[', ']');
        var allowed = AllowedHosts(allowedHosts);
        if (allowed.Length > 0 && !allowed.Contains(host, StringComparer.OrdinalIgnoreCase))
            return $"{field} host '{host}' is not in this silo's Limits:RemoteJudgeAllowedHosts ({string.Join(", ", allowed)})";
        if (IPAddress.TryParse(host, out var address))
            return RefusedAddress(address) is { } why ? $"{field} '{uri.Scheme}://{uri.Authority}' is refused: {why}" : null;
        if (MetadataNames.Contains(host.TrimEnd('.'), StringComparer.OrdinalIgnoreCase))
            return $"{field} '{uri.Scheme}://{uri.Authority}' is refused: {host} is a cloud metadata service";
        return null;
    }
}

/// <summary>A connection the remote judge refused to open (<see cref="RemoteEndpoints"/>): the request fails at once, never retried.</summary>
public sealed class RemoteEndpointRefusedException(string message) : Exception(message);
