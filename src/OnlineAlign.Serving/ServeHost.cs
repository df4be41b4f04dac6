using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace OnlineAlign.Serving;

/// <summary>Where and how to serve.</summary>
public sealed record ServeOptions
{
    public string Listen { get; init; } = "127.0.0.1";
    /// <summary>0: a free port, chosen by the system (see <see cref="ServeHost.Url"/>).</summary>
    public int Port { get; init; }
    public string? ApiKey { get; init; }
    public ServeLimits Limits { get; init; } = new();
}

/// <summary>
/// A running OpenAI-compatible server for one <see cref="ServedModel"/>: Kestrel (HTTP/1.1, as OpenAI clients speak it),
/// the endpoints, and the bearer key check when a key is set. Disposing it stops the server and the model thread (not the model).
/// </summary>
public sealed class ServeHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ModelWorker _worker;

    public string Url { get; }
    internal ModelWorker Worker => _worker;

    private ServeHost(WebApplication app, ModelWorker worker, string url) { _app = app; _worker = worker; Url = url; }

    public static async Task<ServeHost> StartAsync(ServedModel model, ServeOptions options, CancellationToken ct = default)
    {
        if (ServeExposure.Problem(options.Listen, options.ApiKey) is { } problem) throw new InvalidOperationException(problem);
        if (options.Port is < 0 or > 65535) throw new ArgumentException($"--port {options.Port} is not a port (0 to 65535)");
        if (options.Limits.MaxConcurrent < 1) throw new ArgumentException($"--max-concurrent must be at least 1, got {options.Limits.MaxConcurrent}");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = options.Limits.MaxBodyBytes;
            kestrel.Listen(IPAddress.Parse(options.Listen), options.Port);
        });
        var app = builder.Build();
        if (!string.IsNullOrEmpty(options.ApiKey))
        {
            byte[] expected = Encoding.UTF8.GetBytes("Bearer " + options.ApiKey);
            app.Use(async (context, next) =>
            {
                byte[] given = Encoding.UTF8.GetBytes(context.Request.Headers.Authorization.ToString());
                if (!CryptographicOperations.FixedTimeEquals(given, expected))
                {
                    await OpenAiEndpoints.Error(context,
                        new ServeException(401, null, "missing or wrong API key: send the header 'Authorization: Bearer <key>'", "authentication_error"));
                    return;
                }
                await next(context);
            });
        }
        var worker = new ModelWorker(model, options.Limits);
        OpenAiEndpoints.Map(app.MapGroup("/v1"), new SingleModelCatalog(model, worker, options.Limits), options.Limits);
        try { await app.StartAsync(ct); }
        catch { worker.Dispose(); await app.DisposeAsync(); throw; }
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new ServeHost(app, worker, address.TrimEnd('/') + "/v1");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _worker.Dispose();
    }
}
