using Grpc.Core;
using Grpc.Core.Interceptors;

namespace OnlineAlign.Silo.Api;

/// <summary>With an API key configured, every call but the health service needs "authorization: Bearer &lt;key&gt;".</summary>
public sealed class ApiKeyInterceptor(ApiSettings settings) : Interceptor
{
    private void Check(ServerCallContext context)
    {
        if (string.IsNullOrEmpty(settings.ApiKey) || context.Method.StartsWith("/grpc.health.v1.Health/", StringComparison.Ordinal)) return;
        if (!Authorizes(context.RequestHeaders.GetValue("authorization"), settings.ApiKey))
            throw new RpcException(new Status(StatusCode.Unauthenticated, "missing or wrong API key (authorization: Bearer <key>)"));
    }

    /// <summary>Whether an authorization header carries the key ("Bearer &lt;key&gt;"), compared in constant time.</summary>
    public static bool Authorizes(string? header, string key) =>
        header is not null && header.StartsWith("Bearer ", StringComparison.Ordinal)
        && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(header[7..]),
            System.Text.Encoding.UTF8.GetBytes(key));

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }
}
