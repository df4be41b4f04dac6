using System.Net;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Grains.Judging;
using OnlineAlign.Specs;

namespace OnlineAlign.Tests.Security;

/// <summary>
/// SSRF through judge.endpoint: a spec may not make a worker silo ask link-local or cloud metadata addresses (where
/// credentials are served), on the URL at the spec check and on the resolved address at connection time; loopback and
/// private ranges stay allowed unless the silo's allow-list (Limits:RemoteJudgeAllowedHosts) says otherwise.
/// </summary>
public sealed class RemoteEndpointTests
{
    [Theory]
    [InlineData("169.254.169.254", "link-local")]
    [InlineData("169.254.0.1", "link-local")]
    [InlineData("fe80::1", "link-local")]
    [InlineData("febf::1", "link-local")]
    [InlineData("fd00:ec2::254", "metadata")]
    [InlineData("::ffff:169.254.169.254", "link-local")]
    [InlineData("100.100.100.200", "metadata")]
    public void LinkLocalAndMetadataAddressesAreRefused(string address, string why) =>
        Assert.Contains(why, RemoteEndpoints.RefusedAddress(IPAddress.Parse(address)));

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    [InlineData("10.0.0.5")]
    [InlineData("192.168.1.20")]
    [InlineData("172.16.0.1")]
    [InlineData("fd00::5")]
    [InlineData("169.253.255.255")]
    [InlineData("8.8.8.8")]
    public void LoopbackPrivateAndPublicAddressesAreAllowed(string address) => Assert.Null(RemoteEndpoints.RefusedAddress(IPAddress.Parse(address)));

    [Theory]
    [InlineData("http://169.254.169.254/latest/meta-data", "link-local")]
    [InlineData("http://2852039166/", "link-local")] // 169.254.169.254 as one decimal number
    [InlineData("http://0xA9FEA9FE/", "link-local")]
    [InlineData("http://[fd00:ec2::254]/", "metadata")]
    [InlineData("http://[fe80::1]:8000/v1", "link-local")]
    [InlineData("http://metadata.google.internal/computeMetadata/v1", "metadata service")]
    [InlineData("http://METADATA.google.internal./", "metadata service")]
    [InlineData("ftp://judge.example/v1", "not http or https")]
    public void TheValidatorRefusesTheUrl(string url, string why)
    {
        var problem = RemoteEndpoints.Problem("judge.endpoint", new Uri(url), allowedHosts: null);
        Assert.NotNull(problem);
        Assert.StartsWith("judge.endpoint", problem, StringComparison.Ordinal);
        Assert.Contains(why, problem);
    }

    [Fact]
    public void TheAllowListNamesTheOnlyHosts()
    {
        Assert.Null(RemoteEndpoints.Problem("judge.endpoint", new Uri("http://127.0.0.1:8000/v1"), null));
        Assert.Null(RemoteEndpoints.Problem("judge.endpoint", new Uri("http://10.1.2.3:8000/v1"), ""));
        Assert.Null(RemoteEndpoints.Problem("judge.endpoint", new Uri("https://VLLM.internal/v1"), "vllm.internal, 10.0.0.5"));
        Assert.Equal("judge.endpoint host '127.0.0.1' is not in this silo's Limits:RemoteJudgeAllowedHosts (vllm.internal, 10.0.0.5)",
            RemoteEndpoints.Problem("judge.endpoint", new Uri("http://127.0.0.1:8000/v1"), "vllm.internal, 10.0.0.5"));
        // The allow-list never lets a metadata address through.
        Assert.Contains("link-local", RemoteEndpoints.Problem("judge.endpoint", new Uri("http://169.254.169.254/"), "169.254.169.254"));
    }

    [Fact]
    public void TheSpecCheckNamesJudgeEndpoint()
    {
        static IReadOnlyList<string> Problems(string endpoint, string? allowed = null) =>
            new JudgeSpec { Kind = "remote", Endpoint = endpoint, RemoteModel = "m" }.Problems(SpecLimits.Default with { RemoteJudgeAllowedHosts = allowed });
        Assert.Contains("judge.endpoint 'http://169.254.169.254' is refused: 169.254.169.254 is link-local (169.254.0.0/16, where cloud metadata services answer)",
            Problems("http://169.254.169.254/v1"));
        Assert.Contains(Problems("http://[fe80::1%25eth0]:8000/v1"), p => p.StartsWith("judge.endpoint", StringComparison.Ordinal) && p.Contains("link-local"));
        Assert.Contains(Problems("http://metadata.google.internal/v1"), p => p.Contains("metadata service"));
        Assert.Empty(Problems("http://127.0.0.1:8000/v1"));
        Assert.Empty(Problems("http://192.168.0.7:8000/v1"));
        Assert.Contains(Problems("http://192.168.0.7:8000/v1", "judge.internal"), p => p.Contains("Limits:RemoteJudgeAllowedHosts"));
        Assert.Empty(Problems("https://judge.internal/v1", "judge.internal"));
    }

    [Fact]
    public void StartRunsSpecCheckRefusesAMetadataEndpoint()
    {
        var spec = new OnlineAlign.Contracts.RunSpec { Judge = new JudgeSpec { Kind = "remote", Endpoint = "http://[::ffff:a9fe:a9fe]/v1", RemoteModel = "m" } };
        var problems = OnlineAlign.Execution.Specs.RunSpecMapping.Problems(spec, SpecLimits.Default, roots: null, readFiles: false);
        Assert.Contains(problems, p => p.StartsWith("judge.endpoint", StringComparison.Ordinal) && p.Contains("169.254.169.254 is link-local"));
        var allowed = spec with { Judge = spec.Judge with { Endpoint = "http://127.0.0.1:8000/v1" } };
        Assert.DoesNotContain(OnlineAlign.Execution.Specs.RunSpecMapping.Problems(allowed, SpecLimits.Default, roots: null, readFiles: false),
            p => p.Contains("judge.endpoint", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheConnectionChecksTheResolvedAddress()
    {
        Assert.All(await RemoteJudgeTransport.Resolve("localhost", null, default), a => Assert.True(IPAddress.IsLoopback(a)));
        var refused = await Assert.ThrowsAsync<RemoteEndpointRefusedException>(() => RemoteJudgeTransport.Resolve("169.254.169.254", null, default));
        Assert.Contains("link-local", refused.Message);
        await Assert.ThrowsAsync<RemoteEndpointRefusedException>(() => RemoteJudgeTransport.Resolve("[fe80::1]", null, default));
        var notListed = await Assert.ThrowsAsync<RemoteEndpointRefusedException>(() => RemoteJudgeTransport.Resolve("localhost", "judge.internal", default));
        Assert.Contains("Limits:RemoteJudgeAllowedHosts", notListed.Message);
    }

    [Fact]
    public async Task AClientAskingAMetadataAddressFailsAtOnceWithoutConnecting()
    {
        // The spec check would refuse this URL; the client is made directly, as if the check had been passed (a name rebound later).
        var spec = new JudgeSpec { Kind = "remote", Endpoint = "http://169.254.169.254/v1", RemoteModel = "m", MaxAttempts = 5, TimeoutSeconds = 30 };
        var client = new RemoteJudgeClient(spec, null, backoff: TimeSpan.FromMilliseconds(1), maxBackoff: TimeSpan.FromMilliseconds(5));
        var e = await Assert.ThrowsAsync<RemoteJudgeException>(() => client.AskAsync(new JudgeRequest(0, 0, 0, "hi", 1), default));
        Assert.Contains("not asked", e.Message);
        Assert.Contains("link-local", e.Message);
        Assert.Equal(0, client.Retries);
    }
    /// <summary>
    /// HTTP_PROXY would send the request to the proxy, whose address is all the connection-time check sees: the ambient proxy
    /// is never used by the judge. Here the process's default proxy (what HTTP_PROXY sets) is a loopback listener that counts
    /// connections; loopback traffic of tests running beside this one bypasses it (BypassProxyOnLocal), a metadata address would not.
    /// </summary>
    [Fact]
    public async Task WithAnAmbientProxyAMetadataAddressIsStillRefusedAndOnlyANamedProxyIsUsed()
    {
        using var proxy = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        proxy.Start();
        int connections = 0;
        _ = Task.Run(async () =>
        {
            while (true)
            {
                using var connection = await proxy.AcceptTcpClientAsync();
                Interlocked.Increment(ref connections); // closed at once: a request through it fails
            }
        });
        string proxyUrl = $"http://127.0.0.1:{((IPEndPoint)proxy.LocalEndpoint).Port}";
        var metadata = new JudgeSpec { Kind = "remote", Endpoint = "http://169.254.169.254/v1", RemoteModel = "m", MaxAttempts = 1, TimeoutSeconds = 30 };
        var ambient = System.Net.Http.HttpClient.DefaultProxy;
        System.Net.Http.HttpClient.DefaultProxy = new WebProxy(proxyUrl) { BypassProxyOnLocal = true };
        try
        {
            var e = await Assert.ThrowsAsync<RemoteJudgeException>(() => new RemoteJudgeClient(metadata, null).AskAsync(new JudgeRequest(0, 0, 0, "hi", 1), default));
            Assert.Contains("link-local", e.Message);
            // A proxy the silo names (Limits:RemoteJudgeProxy): the judge's host is still checked, before anything is sent.
            e = await Assert.ThrowsAsync<RemoteJudgeException>(() => new RemoteJudgeClient(metadata, null, proxy: proxyUrl).AskAsync(new JudgeRequest(0, 0, 0, "hi", 1), default));
            Assert.Contains("link-local", e.Message);
        }
        finally { System.Net.Http.HttpClient.DefaultProxy = ambient; }
        Assert.Equal(0, Volatile.Read(ref connections));

        // An allowed host through the named proxy: the request goes to the proxy (which drops it), not to the host.
        var listed = metadata with { Endpoint = "http://judge.invalid/v1" };
        await Assert.ThrowsAsync<RemoteJudgeException>(() =>
            new RemoteJudgeClient(listed, null, allowedHosts: "judge.invalid", proxy: proxyUrl).AskAsync(new JudgeRequest(0, 0, 0, "hi", 1), default));
        Assert.Equal(1, Volatile.Read(ref connections));
        Assert.Throws<ArgumentException>(() => new RemoteJudgeClient(listed, null, proxy: "socks5://127.0.0.1:1080"));
    }
}
