using Grpc.AspNetCore.Server;

namespace OnlineAlign.Silo.Api;

/// <summary>
/// Which port serves which page, decided by the connection's local port and never by the Host or :authority header
/// (the client chooses those): the API port serves gRPC only; the observability port serves /metrics and the
/// dashboard and the runs page (<see cref="Ui.RunsPage"/>) only, and every one of its pages needs the API key when the silo
/// has one, but the runs page's own files, which hold no data (the page then asks for the key to call its API).
/// </summary>
public static class PortGate
{
    public static void UsePortGate(this WebApplication app, ApiSettings api, ObservabilitySettings observability)
    {
        // After routing, so that the endpoint a request matched is known; before the endpoints run.
        app.UseRouting();
        app.Use(async (context, next) =>
        {
            var endpoint = context.GetEndpoint();
            bool grpc = endpoint?.Metadata.GetMetadata<GrpcMethodMetadata>() is not null;
            bool onObservabilityPort = observability.Port > 0 && context.Connection.LocalPort == observability.Port;
            if (onObservabilityPort == grpc)
            {
                // gRPC on the observability port, or a page on the API port: nothing is served there.
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }
            bool openAi = endpoint?.Metadata.GetMetadata<OnlineAlign.Serving.OpenAiEndpoints.Api>() is not null;
            if (openAi && !string.IsNullOrEmpty(api.ApiKey) && !Authorizes(context.Request.Headers.Authorization, api.ApiKey))
            {
                // OpenAI clients read an OpenAI error object (and a Bearer challenge: they send "Authorization: Bearer <key>").
                context.Response.Headers.WWWAuthenticate = "Bearer realm=\"onlinealign\"";
                await OnlineAlign.Serving.OpenAiEndpoints.Error(context, new OnlineAlign.Serving.ServeException(401, null,
                    "missing or wrong API key: send the header 'Authorization: Bearer <key>'", "authentication_error"));
                return;
            }
            if (openAi && string.IsNullOrEmpty(api.ApiKey) && !LoopbackHostName(context))
            {
                await OnlineAlign.Serving.OpenAiEndpoints.Error(context, new OnlineAlign.Serving.ServeException(403, null,
                    "without an API key this silo serves models only at a loopback address (http://127.0.0.1 or http://localhost)", "permission_error"));
                return;
            }
            if (onObservabilityPort && !string.IsNullOrEmpty(api.ApiKey) && endpoint?.Metadata.GetMetadata<Ui.RunsPage.Shell>() is null
                && !Authorizes(context.Request.Headers.Authorization, api.ApiKey))
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                // Browsers ask for Basic credentials (any user name, the key as password); Prometheus sends a Bearer key. The
                // runs page's API answers with a Bearer challenge: its page asks for the key, not the browser's dialog.
                context.Response.Headers.WWWAuthenticate = endpoint?.Metadata.GetMetadata<Ui.RunsPage.PageApi>() is null
                    ? "Basic realm=\"onlinealign\", charset=\"UTF-8\"" : "Bearer realm=\"onlinealign\"";
                return;
            }
            await next();
        });
    }

    /// <summary>
    /// Whether the request names a loopback host (Host header): without a key, the silo's HTTP pages answer only there, since a
    /// page of another site that rebinds its own name to 127.0.0.1 still sends that name (DNS rebinding).
    /// </summary>
    public static bool LoopbackHostName(HttpContext context)
    {
        string host = context.Request.Host.Host;
        return host == "localhost" || (System.Net.IPAddress.TryParse(host, out var ip) && System.Net.IPAddress.IsLoopback(ip));
    }

    /// <summary>"Bearer &lt;key&gt;", or Basic credentials whose password is the key.</summary>
    public static bool Authorizes(string? header, string key)
    {
        if (ApiKeyInterceptor.Authorizes(header, key)) return true;
        if (header is null || !header.StartsWith("Basic ", StringComparison.Ordinal) || header.Length > 4096) return false;
        try
        {
            string credentials = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            int colon = credentials.IndexOf(':');
            return colon >= 0 && ApiKeyInterceptor.Authorizes("Bearer " + credentials[(colon + 1)..], key);
        }
        catch (FormatException) { return false; }
    }
}
