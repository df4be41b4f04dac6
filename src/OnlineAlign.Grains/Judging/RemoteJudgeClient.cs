using System.ClientModel;
using System.ClientModel.Primitives;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Specs;
using OpenAI;
using OpenAI.Chat;

namespace OnlineAlign.Grains.Judging;

/// <summary>
/// Asks an OpenAI-compatible /v1/chat/completions endpoint for one judgement with the official OpenAI client (its own
/// retries off: the attempts, their backoff and their limit are this class's, so they follow the spec). 429, 5xx, a
/// timeout, a connection failure or a body that is not a chat completion is retried with jittered exponential backoff
/// (<see cref="RetryDelays"/>: seeded per request; the server's Retry-After, when longer, bounded) up to
/// judge.max_attempts; any other status fails at once. Either way the failure names the endpoint, the status and the attempts.
/// </summary>
public sealed class RemoteJudgeClient
{
    private readonly ChatClient _chat;
    private readonly JudgeSpec _spec;
    private readonly TimeSpan _backoff;
    private readonly TimeSpan _maxBackoff;
    private int _requests, _retries;

    /// <param name="key">the API key (null: the endpoint takes none; a placeholder is sent, as servers without keys ignore it)</param>
    /// <param name="backoff">the first retry's bound, doubled at each attempt; the wait is drawn below it (tests shorten it)</param>
    /// <param name="allowedHosts">the silo's Limits:RemoteJudgeAllowedHosts (<see cref="RemoteJudgeTransport"/>)</param>
    /// <param name="proxy">the silo's Limits:RemoteJudgeProxy (null: no proxy, whatever HTTP_PROXY says)</param>
    public RemoteJudgeClient(JudgeSpec spec, string? key, TimeSpan? backoff = null, TimeSpan? maxBackoff = null, string? allowedHosts = null,
        string? proxy = null)
    {
        _spec = spec;
        _backoff = backoff ?? TimeSpan.FromSeconds(1);
        _maxBackoff = maxBackoff ?? TimeSpan.FromSeconds(60);
        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(spec.Endpoint ?? throw new ArgumentException("judge.endpoint is required with judge.kind 'remote'")),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            Transport = new HttpClientPipelineTransport(RemoteJudgeTransport.For(allowedHosts, proxy)),
            // Our own per-attempt limit (below) ends an attempt first; this only bounds the transport.
            NetworkTimeout = TimeSpan.FromSeconds(spec.TimeoutSeconds + 10),
        };
        _chat = new ChatClient(spec.RemoteModel, new ApiKeyCredential(string.IsNullOrEmpty(key) ? "no-key" : key), options);
    }

    /// <summary>HTTP requests sent, retries included.</summary>
    public int Requests => _requests;
    /// <summary>Requests that were retried (429, 5xx, timeouts, unreadable bodies).</summary>
    public int Retries => _retries;

    /// <summary>The judgement's text ("" where the answer has no text: it scores nothing, and is counted as unscored).</summary>
    public async Task<string> AskAsync(JudgeRequest request, CancellationToken ct)
    {
        var options = new ChatCompletionOptions
        {
            Temperature = (float)_spec.Temperature,
            MaxOutputTokenCount = _spec.MaxNewTokens,
#pragma warning disable OPENAI001 // seed is marked experimental in the client; the servers this targets take it
            Seed = request.Seed,
#pragma warning restore OPENAI001
        };
        ChatMessage[] messages = [new UserChatMessage(request.Text)];
        var delays = new RetryDelays(request.Seed, _backoff, _maxBackoff);
        for (int attempt = 1; ; attempt++)
        {
            string why;
            TimeSpan? serverWait = null;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(_spec.TimeoutSeconds));
            Interlocked.Increment(ref _requests);
            try
            {
                var completion = (await _chat.CompleteChatAsync(messages, options, timeout.Token)).Value;
                return string.Concat(completion.Content.Where(p => p.Kind == ChatMessageContentPartKind.Text).Select(p => p.Text));
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { throw; }
            catch (OperationCanceledException) { why = $"no answer within judge.timeout_seconds {_spec.TimeoutSeconds}"; }
            catch (Exception e) when (Refused(e) is { } refused)
            {
                throw new RemoteJudgeException($"judge endpoint {_spec.Endpoint}: not asked, {refused.Message}");
            }
            catch (ClientResultException e) when (e.Status == 429 || e.Status >= 500 || e.Status == 408 || e.Status == 0)
            {
                why = e.Status == 0 ? $"connection failed: {e.Message}" : $"HTTP {e.Status}";
                serverWait = RetryAfter(e);
            }
            catch (ClientResultException e)
            {
                throw new RemoteJudgeException($"judge endpoint {_spec.Endpoint} (model '{_spec.RemoteModel}') answered HTTP {e.Status}: {Cut(e.Message)}");
            }
            catch (HttpRequestException e) { why = $"connection failed: {e.Message}"; }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException
                or KeyNotFoundException or FormatException or ArgumentException)
            {
                // A 200 whose body is not a chat completion (a proxy's page, a cut-off body): likely transient, never a score.
                why = $"a body that is not a chat completion ({e.GetType().Name}: {Cut(e.Message)})";
            }
            if (attempt >= _spec.MaxAttempts)
                throw new RemoteJudgeException($"judge endpoint {_spec.Endpoint} (model '{_spec.RemoteModel}'): " +
                    $"{why}, after {attempt} attempt{(attempt == 1 ? "" : "s")} (judge.max_attempts)");
            Interlocked.Increment(ref _retries);
            await Task.Delay(delays.Next(attempt, serverWait), ct);
        }
    }

    /// <summary>The server's Retry-After (seconds or an HTTP date), where it gives one.</summary>
    private static TimeSpan? RetryAfter(ClientResultException e) =>
        e.GetRawResponse()?.Headers.TryGetValue("Retry-After", out var value) == true ? RetryDelays.ParseRetryAfter(value, DateTimeOffset.UtcNow) : null;

    /// <summary>The refusal under a failed connection (the HTTP stack wraps what the connect callback throws).</summary>
    private static RemoteEndpointRefusedException? Refused(Exception? e)
    {
        for (; e is not null; e = e.InnerException) if (e is RemoteEndpointRefusedException refused) return refused;
        return null;
    }

    private static string Cut(string text) => text.Length > 300 ? text[..300] + "..." : text;
}

/// <summary>The remote judge could not be asked (after its attempts, or at once on a status that would not change): the phase fails with this reason.</summary>
public sealed class RemoteJudgeException(string message) : Exception(message);
