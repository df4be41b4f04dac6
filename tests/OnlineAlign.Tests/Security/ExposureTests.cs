using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Security;

/// <summary>
/// A silo's API reachable from the network needs a real key; TLS from configuration works with the CLI; a silo's
/// own Azurite does not outlive it, even after kill -9, and keeps no unbounded debug log.
/// </summary>
[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class ExposureTests
{
    [Theory]
    [InlineData("", "without an API key")]
    [InlineData("short-key-of-24-character", "needs at least 32")]
    [InlineData("<a long random string, at least 32 chars>", "placeholder")]
    public async Task AnApiOnANetworkAddressRefusesToStartWithoutARealKey(string key, string expected)
    {
        await using var silo = SiloProcess.Start("all", storageConnectionString: null, "exposure", new Dictionary<string, string>
        {
            ["Api__ListenAddress"] = "0.0.0.0", ["ONLINEALIGN_API_KEY"] = key, ["Silo__DataFolder"] = RepositoryPaths.NewTempFolder("exposed"),
        });
        await silo.WaitForExitAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(2, silo.ExitCode);
        Assert.Contains("refusing to start", silo.Output);
        Assert.Contains(expected, silo.Output);
        Assert.DoesNotContain("Started Azurite", silo.Output); // refused before anything started
    }

    [Theory]
    [InlineData("0.0.0.0", null, "without TLS")]
    [InlineData("127.0.0.1", "/no/such/ca.crt", "ClusterTls:CaPath '/no/such/ca.crt' does not exist")]
    public async Task SiloPortsOffLoopbackRefuseToStartWithoutClusterTls(string listen, string? caPath, string expected)
    {
        var environment = new Dictionary<string, string> { ["Silo__ListenAddress"] = listen, ["Silo__DataFolder"] = RepositoryPaths.NewTempFolder("exposed") };
        if (caPath is not null)
        {
            var certificates = new TestCertificates("refused");
            environment = environment.Concat(certificates.SiloEnvironment("silo")).ToDictionary();
            environment["ClusterTls__CaPath"] = caPath;
        }
        await using var silo = SiloProcess.Start("all", storageConnectionString: null, "exposure", environment);
        await silo.WaitForExitAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(2, silo.ExitCode);
        Assert.Contains("refusing to start", silo.Output);
        Assert.Contains(expected, silo.Output);
        Assert.DoesNotContain("Started Azurite", silo.Output);
    }

    [Fact]
    public async Task TlsFromConfigurationServesTheCliAndTheSilosAzuriteDiesWithItAfterKill9()
    {
        string folder = RepositoryPaths.NewTempFolder("tls");
        var (certificate, key) = (Path.Combine(folder, "cert.pem"), Path.Combine(folder, "key.pem"));
        WriteSelfSignedCertificate(certificate, key);
        string apiKey = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        string data = Path.Combine(folder, "data");
        await using var silo = await SiloProcess.StartReadyAsync(
            () => SiloProcess.Start("all", storageConnectionString: null, "tls-" + Guid.NewGuid().ToString("N")[..6], new Dictionary<string, string>
            {
                ["Api__CertificatePath"] = certificate, ["Api__CertificateKeyPath"] = key, ["ONLINEALIGN_API_KEY"] = apiKey, ["Silo__DataFolder"] = data,
            }),
            s => s.WaitForOutputAsync("up: gRPC on 127.0.0.1", TimeSpan.FromMinutes(2)));
        Assert.Contains("(TLS)", silo.Output);
        string api = $"https://127.0.0.1:{silo.ApiPort}";

        var trusted = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "runs", "--api", api, "--ca-cert", certificate, "--api-key", apiKey);
        Assert.True(trusted.ExitCode == 0, trusted.Stderr);
        var untrusted = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "runs", "--api", api, "--api-key", apiKey);
        Assert.NotEqual(0, untrusted.ExitCode);
        var plain = await CliProcess.RunAsync(TimeSpan.FromMinutes(1), "runs", "--api", $"http://127.0.0.1:{silo.ApiPort}", "--api-key", apiKey);
        Assert.NotEqual(0, plain.ExitCode);

        // kill -9 of the silo alone (not its process tree): its Azurite notices and stops.
        int azurite = int.Parse(Regex.Match(silo.Output, @"Started Azurite \(pid (\d+)\)").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(Directory.Exists($"/proc/{azurite}"));
        System.Diagnostics.Process.Start("kill", ["-9", silo.ProcessId.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Directory.Exists($"/proc/{azurite}") && !IsZombie(azurite) && DateTime.UtcNow < deadline) await Task.Delay(200);
        Assert.False(Directory.Exists($"/proc/{azurite}") && !IsZombie(azurite), $"Azurite (pid {azurite}) outlived its silo");
        Assert.Empty(Directory.GetFiles(Path.Combine(data, "azurite"), "*.log"));
    }

    private static bool IsZombie(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].StartsWith('Z'); }
        catch (IOException) { return true; }
    }

    /// <summary>What `openssl req -x509 ... -addext subjectAltName=IP:127.0.0.1` makes (see docs/reliability.md).</summary>
    private static void WriteSelfSignedCertificate(string certificatePath, string keyPath)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, rsa.ExportPkcs8PrivateKeyPem());
    }
}
