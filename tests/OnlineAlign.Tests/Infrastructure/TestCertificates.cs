using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OnlineAlign.Tests.Infrastructure;

/// <summary>
/// A cluster CA and certificates it issues, as PEM files: what deploy/README.md's openssl commands make, for
/// mutual TLS between silos.
/// </summary>
public sealed class TestCertificates
{
    private readonly RSA _caKey = RSA.Create(2048);
    private readonly X509Certificate2 _ca;
    public string Folder { get; }
    public string CaPath { get; }

    public TestCertificates(string name)
    {
        Folder = RepositoryPaths.NewTempFolder("certs-" + name);
        var request = new CertificateRequest($"CN={name} cluster CA", _caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        _ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-2), DateTimeOffset.UtcNow.AddDays(60));
        CaPath = Path.Combine(Folder, "ca.crt");
        File.WriteAllText(CaPath, _ca.ExportCertificatePem());
    }

    /// <summary>A certificate for a silo (server and client authentication), signed by this CA: (certificate, key) paths.</summary>
    public (string Certificate, string Key) Issue(string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false)); // server and client authentication
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName(name);
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.Create(_ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), RandomNumberGenerator.GetBytes(16));
        string certificatePath = Path.Combine(Folder, name + ".crt"), keyPath = Path.Combine(Folder, name + ".key");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath);
    }

    /// <summary>The silo settings (environment) for mutual TLS with a certificate from this CA.</summary>
    public Dictionary<string, string> SiloEnvironment(string name)
    {
        var (certificate, key) = Issue(name);
        return new() { ["ClusterTls__CertificatePath"] = certificate, ["ClusterTls__KeyPath"] = key, ["ClusterTls__CaPath"] = CaPath };
    }
}
