using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Security;

/// <summary>
/// The runs page's API (/ui/api on the observability port) has the gRPC API's key and limits: off loopback it answers
/// nothing without the key (a Bearer challenge, so a browser does not open its password dialog), only the page's own files
/// are served without it, a POST needs the page's header (no cross-site form), and bad ids and bodies are refused as
/// the gRPC API refuses them. Without a key, it answers only at a loopback host name (no DNS rebinding).
/// </summary>
[Collection(ProcessLanes.A)]
[Trait("Kind", "Cluster")]
public class RunsPageApiTests
{
    private const string Key = "3f9a6c2e8b1d4f7a0c3e6b9d2f5a8c1e4b7d0a3f";

    [Fact]
    public async Task OffLoopbackThePagesApiNeedsTheKeyAndKeepsTheGrpcApisLimits()
    {
        await using var cluster = await LocalTestCluster.StartKeyedAsync(Key, offLoopback: true);
        string page = $"http://127.0.0.1:{cluster.Silos[0].MetricsPort}/ui";
        using var http = new HttpClient();

        // The page's files hold no data: served without the key, with a policy that runs only the silo's own scripts.
        var shell = await http.GetAsync(page + "/");
        Assert.Equal(HttpStatusCode.OK, shell.StatusCode);
        Assert.Contains("app.js", await shell.Content.ReadAsStringAsync());
        Assert.Contains("script-src 'self'", string.Join(";", shell.Headers.GetValues("Content-Security-Policy")));
        Assert.Contains("uPlot", await http.GetStringAsync(page + "/lib/uPlot.iife.min.js"));
        foreach (var other in new[] { "/lib%2F..%2Fapp.js", "/silos/all.json", "/OnlineAlign.Silo.dll", "/lib/" })
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(page + other)).StatusCode);

        // The API: 401 without the key or with a wrong one, with a Bearer challenge (not Basic: no password dialog).
        foreach (var key in new[] { null, "wrong", Key[..^1] })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, page + "/api/runs");
            if (key is not null) request.Headers.Authorization = new("Bearer", key);
            var denied = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
            Assert.Equal("Bearer", denied.Headers.WwwAuthenticate.Single().Scheme);
            Assert.Empty(await denied.Content.ReadAsByteArrayAsync());
        }
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.PostAsync(page + "/api/runs/x/pause", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(page + "/api/runs/x/events")).StatusCode);

        // With the key: the gRPC API's answers and errors, as JSON.
        http.DefaultRequestHeaders.Authorization = new("Bearer", Key);
        var runs = JsonNode.Parse(await http.GetStringAsync(page + "/api/runs"))!;
        Assert.Equal(0, runs["totalRuns"]!.GetValue<int>());
        foreach (var (path, status, code) in new[]
        {
            ("/api/runs/no-such-run", HttpStatusCode.NotFound, "NotFound"),
            ("/api/runs/" + new string('a', 300), HttpStatusCode.NotFound, "NotFound"),
            ("/api/runs/a%20b/rounds", HttpStatusCode.NotFound, "NotFound"),
            ("/api/runs/no-such-run/events", HttpStatusCode.NotFound, "NotFound"),
            ("/api/runs?pageToken=../1", HttpStatusCode.BadRequest, "InvalidArgument"),
        })
        {
            var answer = await http.GetAsync(page + path);
            Assert.Equal(status, answer.StatusCode);
            Assert.Equal(code, JsonNode.Parse(await answer.Content.ReadAsStringAsync())!["code"]!.GetValue<string>());
        }
        // A POST without the page's header is refused before it is read (a cross-site form cannot set it).
        var noHeader = await http.PostAsync(page + "/api/runs/no-such-run/pause", null);
        Assert.Equal(HttpStatusCode.BadRequest, noHeader.StatusCode);
        Assert.Contains("x-onlinealign-page", await noHeader.Content.ReadAsStringAsync());
        http.DefaultRequestHeaders.Add("x-onlinealign-page", "1");
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync(page + "/api/runs/no-such-run/pause", null)).StatusCode);
        // A fork's body is bounded and checked: too large or not JSON is refused; a parent that does not exist is NotFound.
        foreach (var body in new[] { "not json", "{\"round\": 1, \"overrides\": [\"" + new string('x', 70_000) + "\"]}" })
        {
            var bad = await http.PostAsync(page + "/api/runs/no-such-run/fork", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }
        var noParent = await http.PostAsync(page + "/api/runs/no-such-run/fork",
            new StringContent("{\"round\": 1, \"overrides\": [\"loss.beta=0.05\"]}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NotFound, noParent.StatusCode);
        Assert.Contains("fork_from.run_id", await noParent.Content.ReadAsStringAsync());

        // A silo without a key (loopback only) answers its page's API only at a loopback host name.
        var open = await cluster.AddSiloAsync("control");
        using var anonymous = new HttpClient();
        string openApi = $"http://127.0.0.1:{open.MetricsPort}/ui/api/runs";
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync(openApi)).StatusCode);
        using var rebound = new HttpRequestMessage(HttpMethod.Get, openApi);
        rebound.Headers.Host = $"attacker.example:{open.MetricsPort}";
        Assert.Equal(HttpStatusCode.Forbidden, (await anonymous.SendAsync(rebound)).StatusCode);
    }
}
