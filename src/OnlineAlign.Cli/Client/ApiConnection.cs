using System.CommandLine;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using OnlineAlign.Api.V1;

namespace OnlineAlign.Cli.Client;

/// <summary>The --api and --api-key options and a Runs client built from them.</summary>
public static class ApiConnection
{
    public static readonly Option<string> Address = new("--api")
    {
        Description = "gRPC address of a silo (env ONLINEALIGN_API)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ONLINEALIGN_API") ?? "http://127.0.0.1:5080",
        Recursive = true,
    };

    public static readonly Option<string?> Key = new("--api-key")
    {
        Description = "API key, sent as 'authorization: Bearer <key>' (env ONLINEALIGN_API_KEY)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ONLINEALIGN_API_KEY"),
        Recursive = true,
    };

    public static readonly Option<string?> CaCertificate = new("--ca-cert")
    {
        Description = "PEM certificate to trust for an https:// --api whose certificate is self-signed or from a private CA (env ONLINEALIGN_API_CA)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ONLINEALIGN_API_CA"),
        Recursive = true,
    };

    public static Runs.RunsClient Client(ParseResult parse) => Client(parse.GetValue(Address)!, parse.GetValue(Key), parse.GetValue(CaCertificate));

    public static Runs.RunsClient Client(string address, string? key, string? caCertificate = null)
    {
        var channel = string.IsNullOrEmpty(caCertificate) ? GrpcChannel.ForAddress(address)
            : GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = TrustingOnly(caCertificate) });
        if (string.IsNullOrEmpty(key)) return new Runs.RunsClient(channel);
        var invoker = channel.Intercept(metadata => { metadata.Add("authorization", "Bearer " + key); return metadata; });
        return new Runs.RunsClient(invoker);
    }

    /// <summary>An HTTP handler that accepts a server certificate only if it chains to the given PEM certificate.</summary>
    private static SocketsHttpHandler TrustingOnly(string caPemFile)
    {
        if (!File.Exists(caPemFile)) throw new FileNotFoundException($"--ca-cert '{caPemFile}' does not exist", caPemFile);
        var trusted = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(caPemFile));
        return new SocketsHttpHandler
        {
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    if (certificate is null) return false;
                    if (errors == System.Net.Security.SslPolicyErrors.None) return true;
                    using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
                    chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(trusted);
                    chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
                    // The name must still match: only an untrusted root is forgiven, not a certificate for another host.
                    return (errors & ~System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors) == 0
                           && chain.Build(new System.Security.Cryptography.X509Certificates.X509Certificate2(certificate));
                },
            },
        };
    }
}
