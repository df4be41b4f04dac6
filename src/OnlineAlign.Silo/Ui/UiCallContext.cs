using Grpc.Core;

namespace OnlineAlign.Silo.Ui;

/// <summary>
/// The call context the browser page's requests give <see cref="Api.RunsService"/>: the page calls the gRPC service's own
/// methods in process (same validation, limits and mapping), so only the HTTP request's cancellation and peer carry over.
/// </summary>
internal sealed class UiCallContext(HttpContext http, string method) : ServerCallContext
{
    private readonly Metadata _headers = [];
    private readonly Metadata _trailers = [];

    protected override string MethodCore => "/onlinealign.v1.Runs/" + method;
    protected override string HostCore => http.Request.Host.Value ?? "";
    // The form gRPC gives ("ipv4:127.0.0.1:5000"): WatchStreamLimits counts streams per client address from it.
    protected override string PeerCore => http.Connection.RemoteIpAddress is { } address
        ? $"{(address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "ipv6:[" + address + "]" : "ipv4:" + address)}:" +
          http.Connection.RemotePort.ToString(System.Globalization.CultureInfo.InvariantCulture)
        : "unknown";
    protected override DateTime DeadlineCore => DateTime.MaxValue;
    protected override Metadata RequestHeadersCore => _headers;
    protected override CancellationToken CancellationTokenCore => http.RequestAborted;
    protected override Metadata ResponseTrailersCore => _trailers;
    protected override Status StatusCore { get; set; }
    protected override WriteOptions? WriteOptionsCore { get; set; }
    protected override AuthContext AuthContextCore => new(null, []);
    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) =>
        throw new NotSupportedException("the browser page's calls do not propagate");
    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
}
