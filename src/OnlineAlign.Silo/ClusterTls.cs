using System.Net;
using System.Security.Cryptography.X509Certificates;
using Orleans.Connections.Security;

namespace OnlineAlign.Silo;

/// <summary>
/// The "ClusterTls" section: mutual TLS on the silo-to-silo and gateway ports. Every silo presents a certificate
/// issued by the cluster's own CA and accepts only peers whose certificate chains to that CA, so a machine that
/// merely reaches the ports can neither join the cluster nor call a grain.
/// </summary>
public sealed class ClusterTlsSettings
{
    /// <summary>This silo's certificate (PEM); it must allow both server and client authentication.</summary>
    public string? CertificatePath { get; set; }
    /// <summary>Its private key (PEM).</summary>
    public string? KeyPath { get; set; }
    /// <summary>The cluster's CA certificate (PEM): peers are trusted when their certificate chains to it, and only then.</summary>
    public string? CaPath { get; set; }

    public bool Enabled => !string.IsNullOrEmpty(CertificatePath) || !string.IsNullOrEmpty(KeyPath) || !string.IsNullOrEmpty(CaPath);
}

public static class ClusterTls
{
    /// <summary>Why the silo must not start with these settings, or null.</summary>
    public static string? Problem(SiloSettings silo, ClusterTlsSettings tls)
    {
        if (tls.Enabled)
        {
            foreach (var (name, path) in new[] { ("CertificatePath", tls.CertificatePath), ("KeyPath", tls.KeyPath), ("CaPath", tls.CaPath) })
            {
                if (string.IsNullOrEmpty(path)) return $"ClusterTls:{name} is not set (cluster TLS needs CertificatePath, KeyPath and CaPath)";
                if (!File.Exists(path)) return $"ClusterTls:{name} '{path}' does not exist";
            }
            return null;
        }
        // In a pod the silo listens on the pod's address; elsewhere on Silo:ListenAddress.
        bool loopback = !silo.Kubernetes && IPAddress.TryParse(silo.ListenAddress, out var address) && IPAddress.IsLoopback(address);
        return loopback ? null
            : $"the silo and gateway ports ({silo.SiloPort}, {silo.GatewayPort}) would listen on " +
                $"{(silo.Kubernetes ? "the pod's address" : silo.ListenAddress)}, " +
              "reachable from the network, without TLS: anyone reaching them could call any grain. Set ClusterTls:CertificatePath, " +
              "ClusterTls:KeyPath and ClusterTls:CaPath (PEM files from the cluster's CA; see deploy/README.md), or listen on 127.0.0.1";
    }

    public static ISiloBuilder UseClusterTls(this ISiloBuilder orleans, ClusterTlsSettings tls)
    {
        if (!tls.Enabled) return orleans;
        var certificate = X509Certificate2.CreateFromPemFile(tls.CertificatePath!, tls.KeyPath);
        var authority = X509Certificate2.CreateFromPem(File.ReadAllText(tls.CaPath!));
        return orleans.UseTls(options =>
        {
            options.LocalCertificate = certificate;
            options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
            options.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
            // Peers are addressed by IP, so host names are not what identifies them: the cluster CA's signature is.
            options.RemoteCertificateValidation = (remote, _, _) => IssuedBy(remote, authority);
        });
    }

    /// <summary>Whether a certificate chains to the given CA alone (the machine's trust store plays no part).</summary>
    public static bool IssuedBy(X509Certificate2 certificate, X509Certificate2 authority)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }
}
