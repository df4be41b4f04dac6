using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace OnlineAlign.Tests.Judging;

/// <summary>
/// A real HTTP server (Kestrel, in process, loopback, a free port) that plays an OpenAI-compatible judge and misbehaves on
/// purpose: each request to /v1/chat/completions is answered by the test's handler, given the request's number (from 1) and
/// its JSON body. Every request is recorded with its Authorization header.
/// </summary>
public sealed class FakeJudgeServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _count;

    public ConcurrentQueue<(JsonObject Body, string Authorization)> Seen { get; } = new();
    public int Count => Volatile.Read(ref _count);
    public string Url { get; }

    private FakeJudgeServer(WebApplication app, string url) { _app = app; Url = url; }

    public static async Task<FakeJudgeServer> StartAsync(Func<int, JsonObject, HttpContext, Task> handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        FakeJudgeServer? server = null;
        app.MapPost("/v1/chat/completions", async context =>
        {
            var body = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
            int n = Interlocked.Increment(ref server!._count);
            server.Seen.Enqueue((body, context.Request.Headers.Authorization.ToString()));
            await handler(n, body, context);
        });
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server = new FakeJudgeServer(app, address.TrimEnd('/') + "/v1");
        return server;
    }

    /// <summary>A chat completion whose message is <paramref name="content"/>.</summary>
    public static Task Answer(HttpContext context, string content)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(JsonSerializer.Serialize(new
        {
            id = "chatcmpl-test", @object = "chat.completion", created = 1, model = "judge",
            choices = new[] { new { index = 0, message = new { role = "assistant", content }, finish_reason = "stop" } },
            usage = new { prompt_tokens = 1, completion_tokens = 1, total_tokens = 2 },
        }));
    }

    public static Task Status(HttpContext context, int status, string? retryAfter = null)
    {
        context.Response.StatusCode = status;
        if (retryAfter is not null) context.Response.Headers.RetryAfter = retryAfter;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync("""{"error":{"message":"on purpose","type":"test"}}""");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
