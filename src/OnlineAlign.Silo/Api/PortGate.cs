using Grpc.AspNetCore.Server;

namespace OnlineAlign.Silo.Api;

/// <summary>
/// Which port serves which page, decided by the connection's local port and never by the Host or :authority header
/// (the client chooses those): the API port serves gRPC only; the observability port serves /metrics and the
/// dashboard only, and every one of its pages needs the API key when the silo has one.
/// </summary>
public static class PortGate
{
    public static void UsePortGate(this WebApplication app, ApiSettings api, ObservabilitySettings observability)
    {
        // After routing, so that the endpoint a request matched is known; before the endpoints run.
        app.UseRouting();
        app.Use(async (context, next) =>
        {
            bool grpc = context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>() is not null;
            bool onObservabilityPort = observability.Port > 0 && context.Connection.LocalPort == observability.Port;
            if (onObservabilityPort == grpc)
            {
                // gRPC on the observability port, or a page on the API port: nothing is served there.
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }
            if (onObservabilityPort && !string.IsNullOrEmpty(api.ApiKey) && !Authorizes(context.Request.Headers.Authorization, api.ApiKey))
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                // Browsers ask for Basic credentials (any user name, the key as password); Prometheus sends a Bearer key.
                context.Response.Headers.WWWAuthenticate = "Basic realm=\"onlinealign\", charset=\"UTF-8\"";
                return;
            }
            await next();
        });
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
