using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Http.Features;
using OnlineAlign.Silo.Api;
using V1 = OnlineAlign.Api.V1;

namespace OnlineAlign.Silo.Ui;

/// <summary>
/// The browser page on the observability port (HTTP/1.1: browsers do not speak the API port's plain HTTP/2): its files
/// under /ui/ and a JSON and server-sent-events API under /ui/api/ that calls <see cref="RunsService"/>'s own methods, so
/// the page gets the gRPC API's validation, limits, errors and messages (as protobuf JSON) and no run logic of its own.
/// The API needs the key as the gRPC API does ("authorization: Bearer", checked by <see cref="PortGate"/>); the page's
/// files hold no data and are served without it, so the page can ask for the key itself.
/// </summary>
public static class RunsPage
{
    /// <summary>Endpoint metadata: a file of the page, served without the key.</summary>
    public sealed class Shell;

    /// <summary>Endpoint metadata: the page's API (a 401 must not open the browser's password dialog).</summary>
    public sealed class PageApi;

    /// <summary>A POST must carry this header: a cross-site form cannot, and a cross-site fetch with it needs a preflight never granted.</summary>
    public const string RequestHeader = "x-onlinealign-page";

    /// <summary>The runs one page of the list shows (ListRuns' page size; the page follows next_page_token for more).</summary>
    public const int RunsPerPage = 100;

    private const int MaxForkBodyBytes = 64 * 1024;

    // The page's files, by the name in the URL: nothing else under the folder is served.
    private static readonly Dictionary<string, string> Files = new(StringComparer.Ordinal)
    {
        [""] = "index.html", ["app.js"] = "app.js", ["app.css"] = "app.css",
        ["lib/uPlot.iife.min.js"] = "lib/uPlot.iife.min.js", ["lib/uPlot.min.css"] = "lib/uPlot.min.css",
    };

    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true));

    public static void MapRunsPage(this WebApplication app, ApiSettings api)
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "ui");
        var create = ActivatorUtilities.CreateFactory<RunsService>([]);
        RunsService Service(HttpContext http) => create(http.RequestServices, []);

        // Routing matches "/ui/" to "/ui" too: the page's relative links need the slash.
        app.MapGet("/ui", (HttpContext http) => http.Request.Path.Value!.EndsWith('/') ? ServeFile(http, folder, "") : Results.Redirect("/ui/"))
            .WithMetadata(new Shell());
        app.MapGet("/ui/{**file}", (HttpContext http, string? file) => ServeFile(http, folder, file ?? "")).WithMetadata(new Shell());

        var page = app.MapGroup("/ui/api").WithMetadata(new PageApi()).AddEndpointFilter(async (filter, next) =>
            Refusal(filter.HttpContext, api) ?? await next(filter));
        page.MapGet("/runs", (HttpContext http, string? pageToken) => Call(http, "ListRuns",
            c => Service(http).ListRuns(new V1.ListRunsRequest { PageSize = RunsPerPage, PageToken = pageToken ?? "" }, c)));
        page.MapGet("/runs/{id}", (HttpContext http, string id) => Call(http, "GetRun",
            c => Service(http).GetRun(new V1.GetRunRequest { RunId = id }, c)));
        page.MapGet("/runs/{id}/rounds", (HttpContext http, string id) => Call(http, "ListRounds",
            c => Service(http).ListRounds(new V1.ListRoundsRequest { RunId = id }, c)));
        page.MapGet("/runs/{id}/steps", (HttpContext http, string id, string? pageToken) => Call(http, "ListSteps",
            c => Service(http).ListSteps(new V1.ListStepsRequest { RunId = id, PageToken = pageToken ?? "" }, c)));
        page.MapGet("/runs/{id}/events", (HttpContext http, string id, int? fromRound) => Watch(http, Service(http), id, fromRound ?? 0));
        page.MapPost("/runs/{id}/pause", (HttpContext http, string id) =>
            Call(http, "PauseRun", c => Service(http).PauseRun(new V1.RunRef { RunId = id }, c)));
        page.MapPost("/runs/{id}/resume", (HttpContext http, string id) =>
            Call(http, "ResumeRun", c => Service(http).ResumeRun(new V1.RunRef { RunId = id }, c)));
        page.MapPost("/runs/{id}/cancel", (HttpContext http, string id) =>
            Call(http, "CancelRun", c => Service(http).CancelRun(new V1.RunRef { RunId = id }, c)));
        page.MapPost("/runs/{id}/fork", async (HttpContext http, string id) =>
        {
            var (fork, problem) = await ReadFork(http, id);
            return fork is null ? problem! : await Call(http, "StartRun", c => Service(http).StartRun(new V1.StartRunRequest { ForkFrom = fork }, c));
        });
    }

    private static IResult ServeFile(HttpContext http, string folder, string file)
    {
        if (!Files.TryGetValue(file, out var name)) return Results.NotFound();
        string path = Path.Combine(folder, name);
        // The build copies the charting library from node_modules (`npm ci`); a silo built without it says so.
        if (!File.Exists(path))
            return Results.Problem($"the page's file {name} is missing from {folder}: run `npm ci` in the repository root and build again",
                statusCode: StatusCodes.Status500InternalServerError);
        http.Response.Headers.ContentSecurityPolicy =
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";
        http.Response.Headers.XContentTypeOptions = "nosniff";
        http.Response.Headers.CacheControl = "no-cache";
        string type = Path.GetExtension(name) switch
        {
            ".html" => "text/html; charset=utf-8", ".js" => "text/javascript; charset=utf-8", _ => "text/css; charset=utf-8",
        };
        return Results.File(path, type);
    }

    /// <summary>
    /// Why the page's API refuses a request before it is read (null: it may go on). Without a key, only a loopback host name
    /// (a page another site rebinds to 127.0.0.1 names its own host); a POST needs <see cref="RequestHeader"/> (no cross-site form).
    /// </summary>
    private static IResult? Refusal(HttpContext http, ApiSettings api)
    {
        if (string.IsNullOrEmpty(api.ApiKey) && !PortGate.LoopbackHostName(http))
            return Error(StatusCodes.Status403Forbidden, "PermissionDenied",
                "without an API key the page answers only at a loopback address (http://127.0.0.1 or http://localhost)");
        if (HttpMethods.IsPost(http.Request.Method) && !http.Request.Headers.ContainsKey(RequestHeader))
            return Error(StatusCodes.Status400BadRequest, "InvalidArgument", $"a POST to the page's API needs the {RequestHeader} header");
        return null;
    }

    /// <summary>The fork request's body: {"round": N, "overrides": ["path=value", ...]} (RunsService checks both).</summary>
    private static async Task<(V1.ForkFrom? Fork, IResult? Problem)> ReadFork(HttpContext http, string id)
    {
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = MaxForkBodyBytes;
        try
        {
            var body = await http.Request.ReadFromJsonAsync<ForkBody>(http.RequestAborted);
            var fork = new V1.ForkFrom { RunId = id, Round = body?.Round ?? 0 };
            if (body?.Overrides is { } overrides) fork.Overrides.AddRange(overrides.Select(o => o ?? ""));
            return (fork, null);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or BadHttpRequestException)
        {
            return (null, Error(StatusCodes.Status400BadRequest, "InvalidArgument",
                $"the fork request must be JSON of at most {MaxForkBodyBytes} bytes: {{\"round\": 2, \"overrides\": [\"loss.beta=0.05\"]}}"));
        }
    }

    private sealed record ForkBody(int Round, string?[]? Overrides);

    private static async Task<IResult> Call<T>(HttpContext http, string method, Func<ServerCallContext, Task<T>> call) where T : IMessage
    {
        try { return Results.Text(Formatter.Format(await call(new UiCallContext(http, method))), "application/json; charset=utf-8"); }
        catch (RpcException e) { return Error(e.Status); }
    }

    /// <summary>WatchRun's events as server-sent events, each a RunEvent in protobuf JSON; an error before the first is an HTTP error.</summary>
    private static async Task<IResult> Watch(HttpContext http, RunsService service, string id, int fromRound)
    {
        var events = new EventStream(http.Response);
        try { await service.WatchRun(new V1.WatchRunRequest { RunId = id, FromRound = fromRound }, events, new UiCallContext(http, "WatchRun")); }
        catch (RpcException e) when (!http.Response.HasStarted) { return Error(e.Status); }
        catch (RpcException) { return Results.Empty; } // the stream had begun: the page reconnects
        catch (OperationCanceledException) { return Results.Empty; } // the page went away, or the silo stops
        if (!http.Response.HasStarted) await events.StartAsync(http.RequestAborted);
        return Results.Empty;
    }

    private sealed class EventStream(HttpResponse response) : IServerStreamWriter<V1.RunEvent>
    {
        public WriteOptions? WriteOptions { get; set; }

        public async Task StartAsync(CancellationToken ct)
        {
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-store";
            response.HttpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            await response.StartAsync(ct);
        }

        public Task WriteAsync(V1.RunEvent message) => WriteAsync(message, CancellationToken.None);

        public async Task WriteAsync(V1.RunEvent message, CancellationToken cancellationToken)
        {
            if (!response.HasStarted) await StartAsync(cancellationToken);
            // Protobuf JSON has no raw line breaks, so one data line holds one event.
            await response.WriteAsync("data: " + Formatter.Format(message) + "\n\n", cancellationToken);
            await response.Body.FlushAsync(cancellationToken);
        }
    }

    private static IResult Error(Status status) => Error(status.StatusCode switch
    {
        StatusCode.InvalidArgument or StatusCode.OutOfRange => StatusCodes.Status400BadRequest,
        StatusCode.Unauthenticated => StatusCodes.Status401Unauthorized,
        StatusCode.PermissionDenied => StatusCodes.Status403Forbidden,
        StatusCode.NotFound => StatusCodes.Status404NotFound,
        StatusCode.FailedPrecondition or StatusCode.AlreadyExists or StatusCode.Aborted => StatusCodes.Status409Conflict,
        StatusCode.ResourceExhausted => StatusCodes.Status429TooManyRequests,
        StatusCode.Unavailable => StatusCodes.Status503ServiceUnavailable,
        StatusCode.Cancelled => 499,
        _ => StatusCodes.Status500InternalServerError,
    }, status.StatusCode.ToString(), status.Detail);

    private static IResult Error(int httpStatus, string code, string message) =>
        Results.Json(new Dictionary<string, string> { ["code"] = code, ["message"] = message }, statusCode: httpStatus);
}
