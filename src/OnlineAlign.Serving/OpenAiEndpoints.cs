using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace OnlineAlign.Serving;

/// <summary>
/// GET /v1/models, POST /v1/completions and POST /v1/chat/completions in OpenAI's shapes: whole responses, or server-sent
/// events (`data: {chunk}` lines, then `data: [DONE]`) with stream=true. Errors are OpenAI's error object. The one
/// implementation of the API: `onlinealign serve` maps it over one folder's model, a silo over its committed rounds
/// (<see cref="IModelCatalog"/>).
/// </summary>
public static class OpenAiEndpoints
{
    /// <summary>Endpoint metadata: the OpenAI-compatible API (its refusals are OpenAI error objects).</summary>
    public sealed class Api;

    /// <summary>Maps the three endpoints under <paramref name="v1"/> (a group at /v1), each marked with <see cref="Api"/>.</summary>
    public static void Map(IEndpointRouteBuilder v1, IModelCatalog catalog, ServeLimits limits)
    {
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var admitted = new SemaphoreSlim(limits.MaxConcurrent);
        v1.MapGet("/models", async (HttpContext context) =>
        {
            var cards = await catalog.ListAsync(context.RequestAborted);
            await Results.Json(new JsonObject
            {
                ["object"] = "list",
                ["data"] = new JsonArray(cards.Select(card =>
                {
                    var item = new JsonObject { ["id"] = card.Id, ["object"] = "model", ["created"] = created, ["owned_by"] = "onlinealign" };
                    if (card.Context is int context) item["max_model_len"] = context;
                    return (JsonNode)item;
                }).ToArray()),
            }).ExecuteAsync(context);
        }).WithMetadata(new Api());
        v1.MapPost("/completions", context => Handle(context, false)).WithMetadata(new Api());
        v1.MapPost("/chat/completions", context => Handle(context, true)).WithMetadata(new Api());

        async Task Handle(HttpContext context, bool chat)
        {
            if (!admitted.Wait(0))
            {
                await Error(context,
                    new ServeException(429, null, $"the server is busy: {limits.MaxConcurrent} requests are in progress; retry later", "rate_limit_error"));
                return;
            }
            try
            {
                var body = await ReadBody(context, limits);
                var reply = await catalog.StartAsync(chat, body, context.RequestAborted);
                var shape = new Reply(chat, reply.Model, reply.PromptTokens);
                if (reply.Stream) await Stream(context, shape, reply);
                else await Whole(context, shape, reply);
            }
            catch (ServeException e) when (!context.Response.HasStarted) { await Error(context, e); }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested) { }
            catch (Exception e) when (!context.Response.HasStarted)
            {
                await Error(context, new ServeException(500, null, $"generation failed: {e.Message}", "server_error"));
            }
            finally { admitted.Release(); }
        }
    }

    private static async Task<JsonObject> ReadBody(HttpContext context, ServeLimits limits)
    {
        if (context.Request.ContentLength > limits.MaxBodyBytes)
            throw new ServeException(413, null, $"the request body is {context.Request.ContentLength} bytes; at most {limits.MaxBodyBytes} are accepted");
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + read > limits.MaxBodyBytes)
                throw new ServeException(413, null, $"the request body is over {limits.MaxBodyBytes} bytes, the most accepted");
            buffer.Write(chunk, 0, read);
        }
        try
        {
            return JsonNode.Parse(buffer.ToArray()) as JsonObject ?? throw new ServeException(400, null, "the request body must be a JSON object");
        }
        catch (JsonException e) { throw new ServeException(400, null, $"the request body is not valid JSON: {e.Message}"); }
    }

    private static async Task Whole(HttpContext context, Reply reply, ServedReply request)
    {
        var texts = new System.Text.StringBuilder[request.N];
        var reasons = new string?[request.N];
        int generated = 0;
        for (int i = 0; i < request.N; i++) texts[i] = new();
        await foreach (var d in request.Deltas.WithCancellation(context.RequestAborted))
        {
            texts[d.Index].Append(d.Text);
            if (d.FinishReason is not null) { reasons[d.Index] = d.FinishReason; generated += d.Generated; }
        }
        var choices = new JsonArray(Enumerable.Range(0,
            request.N).Select(i => (JsonNode)reply.Choice(i, texts[i].ToString(), reasons[i], whole: true)).ToArray());
        var response = reply.Envelope(streaming: false, choices);
        response["usage"] = reply.Usage(generated);
        await Results.Json(response).ExecuteAsync(context);
    }

    private static async Task Stream(HttpContext context, Reply reply, ServedReply request)
    {
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        int generated = 0;
        if (reply.Chat)
            for (int i = 0; i < request.N; i++)
                await Send(context, reply.Envelope(true, new JsonArray(reply.Choice(i, null, null, whole: false, role: true))));
        await foreach (var d in request.Deltas.WithCancellation(context.RequestAborted))
        {
            if (d.FinishReason is not null) generated += d.Generated;
            if (d.Text.Length > 0 || d.FinishReason is null)
                await Send(context, reply.Envelope(true, new JsonArray(reply.Choice(d.Index, d.Text, null, whole: false))));
            if (d.FinishReason is not null)
                await Send(context, reply.Envelope(true, new JsonArray(reply.Choice(d.Index, reply.Chat ? null : "", d.FinishReason, whole: false))));
        }
        if (request.IncludeUsage)
        {
            var last = reply.Envelope(true, []);
            last["usage"] = reply.Usage(generated);
            await Send(context, last);
        }
        await context.Response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
    }

    private static async Task Send(HttpContext context, JsonObject chunk)
    {
        await context.Response.WriteAsync("data: " + chunk.ToJsonString() + "\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    public static Task Error(HttpContext context, ServeException e) =>
        Results.Json(new JsonObject
        {
            ["error"] = new JsonObject { ["message"] = e.Message, ["type"] = e.Type, ["param"] = e.Param, ["code"] = null },
        }, statusCode: e.Status).ExecuteAsync(context);

    /// <summary>The parts every response and chunk of one request share.</summary>
    private sealed class Reply(bool chat, string model, int promptTokens)
    {
        private readonly string _id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N")[..24];
        private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        public bool Chat => chat;

        public JsonObject Envelope(bool streaming, JsonArray choices) => new()
        {
            ["id"] = _id,
            ["object"] = chat ? (streaming ? "chat.completion.chunk" : "chat.completion") : "text_completion",
            ["created"] = _created,
            ["model"] = model,
            ["choices"] = choices,
        };

        public JsonObject Choice(int index, string? text, string? finishReason, bool whole, bool role = false)
        {
            var choice = new JsonObject { ["index"] = index };
            if (!chat) { choice["text"] = text ?? ""; choice["logprobs"] = null; }
            else if (whole) choice["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text };
            else
            {
                var delta = new JsonObject();
                if (role) { delta["role"] = "assistant"; delta["content"] = ""; }
                else if (text is not null) delta["content"] = text;
                choice["delta"] = delta;
            }
            choice["finish_reason"] = finishReason;
            return choice;
        }

        public JsonObject Usage(int completionTokens) => new()
        {
            ["prompt_tokens"] = promptTokens, ["completion_tokens"] = completionTokens, ["total_tokens"] = promptTokens + completionTokens,
        };
    }
}
