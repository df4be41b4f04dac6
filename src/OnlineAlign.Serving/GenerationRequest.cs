using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Serving;

/// <summary>
/// A completion or chat completion request, read from its JSON body and checked against the model and the limits. Every
/// refusal is a <see cref="ServeException"/> naming the field, as OpenAI's API names it.
/// </summary>
public sealed record GenerationRequest(int[] Prompt, int MaxTokens, double Temperature, double TopP, int N, ulong[] Seeds,
    IReadOnlyList<string> Stop, bool Stream, bool IncludeUsage)
{
    public static GenerationRequest Completion(JsonObject body, ServedModel model, ServeLimits limits)
    {
        CheckModel(body, model);
        string text = body["prompt"] switch
        {
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            JsonArray { Count: 1 } a when a[0] is JsonValue v && v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            null => throw new ServeException(400, "prompt", "prompt is required"),
            _ => throw new ServeException(400, "prompt", "prompt must be a string (or a list of one string)"),
        };
        if (body["echo"] is JsonValue echo && echo.GetValueKind() == JsonValueKind.True) throw new ServeException(400, "echo", "echo is not supported");
        return Read(body, model.CompletionPrompt(text), "prompt", model, limits);
    }

    public static GenerationRequest Chat(JsonObject body, ServedModel model, ServeLimits limits)
    {
        CheckModel(body, model);
        if (body["messages"] is not JsonArray messages || messages.Count == 0)
            throw new ServeException(400, "messages", "messages must be a non-empty list of {role, content}");
        if (messages.Count > limits.MaxMessages)
            throw new ServeException(400, "messages", $"{messages.Count} messages; at most {limits.MaxMessages} are accepted");
        var turns = messages.Select((m, i) => Message(m, i)).ToList();
        return Read(body, model.ChatPrompt(turns), "messages", model, limits);
    }

    private static ChatMessage Message(JsonNode? node, int i)
    {
        string param = $"messages[{i}]";
        if (node is not JsonObject m) throw new ServeException(400, param, $"{param} must be an object with role and content");
        string role = m["role"] is JsonValue r && r.GetValueKind() == JsonValueKind.String ? r.GetValue<string>() : "";
        if (role is not ("system" or "developer" or "user" or "assistant"))
            throw new ServeException(400, param + ".role", $"{param}.role must be system, developer, user or assistant");
        string content = m["content"] switch
        {
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            // Content parts: only text parts, joined, as OpenAI-compatible servers for text models take them.
            JsonArray parts => string.Concat(parts.Select((p, k) => p is JsonObject o && o["type"]?.GetValue<string>() == "text" && o["text"] is JsonValue t
                ? t.GetValue<string>()
                    : throw new ServeException(400, $"{param}.content[{k}]", $"{param}.content[{k}] is not a text part (only text is served)"))),
            _ => throw new ServeException(400, param + ".content", $"{param}.content must be a string or a list of text parts"),
        };
        return new ChatMessage(role == "developer" ? "system" : role, content);
    }

    private static void CheckModel(JsonObject body, ServedModel model)
    {
        string? name = body["model"] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
        if (name is null) throw new ServeException(400, "model", "model is required");
        if (name != model.Id) throw new ServeException(404, "model", $"model '{name}' is not served here; this server serves '{model.Id}'", "model_not_found");
    }

    private static GenerationRequest Read(JsonObject body, int[] prompt, string promptParam, ServedModel model, ServeLimits limits)
    {
        int room = model.Context - prompt.Length;
        if (room < 1)
            throw new ServeException(400, promptParam,
                $"the prompt is {prompt.Length} tokens; the model's context is {model.Context}, which leaves no room for a reply");
        string tokensParam = body.ContainsKey("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        int maxTokens = Integer(body, tokensParam, room);
        if (maxTokens < 1 || maxTokens > room)
            throw new ServeException(400, tokensParam,
                $"{tokensParam} is {maxTokens}; it must be from 1 to {room} (the model's context of {model.Context} minus the prompt's " +
                    $"{prompt.Length} tokens)");
        double temperature = Number(body, "temperature", 1.0);
        if (temperature is < 0 or > 2) throw new ServeException(400, "temperature", $"temperature is {temperature}; it must be from 0 to 2");
        double topP = Number(body, "top_p", 1.0);
        if (topP is <= 0 or > 1) throw new ServeException(400, "top_p", $"top_p is {topP}; it must be in (0, 1]");
        int n = Integer(body, "n", 1);
        if (n < 1 || n > limits.MaxN) throw new ServeException(400, "n", $"n is {n}; it must be from 1 to {limits.MaxN}");
        // Each choice samples from its own generator: seed + choice index, or a fresh random seed (never torch's global generator).
        ulong seed = body["seed"] is null ? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) : unchecked((ulong)Long(body, "seed"));
        var stop = Stops(body["stop"], limits);
        bool stream = Bool(body, "stream");
        bool includeUsage = body["stream_options"] is JsonObject options && Bool(options, "include_usage");
        foreach (string unsupported in new[] { "logprobs", "top_logprobs", "tools", "functions", "best_of", "suffix" })
            if (body[unsupported] is JsonNode value && value.GetValueKind() is not (JsonValueKind.Null or JsonValueKind.False))
                throw new ServeException(400, unsupported, $"{unsupported} is not supported by this server");
        return new GenerationRequest(prompt, maxTokens, temperature, topP, n, Enumerable.Range(0, n).Select(i => unchecked(seed + (ulong)i)).ToArray(),
            stop, stream, includeUsage);
    }

    private static List<string> Stops(JsonNode? node, ServeLimits limits)
    {
        var stops = node switch
        {
            null => [],
            JsonValue v when v.GetValueKind() == JsonValueKind.String => [v.GetValue<string>()],
            JsonArray a => a.Select(s => s is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>()
                : throw new ServeException(400, "stop", "stop must be a string or a list of strings")).ToList(),
            _ => throw new ServeException(400, "stop", "stop must be a string or a list of strings"),
        };
        if (stops.Count > limits.MaxStopSequences) throw new ServeException(400, "stop", $"{stops.Count} stop sequences; at most {limits.MaxStopSequences}");
        if (stops.Any(s => s.Length == 0 || s.Length > limits.MaxStopLength))
            throw new ServeException(400, "stop", $"each stop sequence must be 1 to {limits.MaxStopLength} characters");
        return stops;
    }

    private static int Integer(JsonObject body, string name, int fallback)
    {
        if (body[name] is null) return fallback;
        long value = Long(body, name);
        return value is >= int.MinValue and <= int.MaxValue ? (int)value : throw new ServeException(400, name, $"{name} is {value}, out of range");
    }

    private static long Long(JsonObject body, string name) =>
        body[name] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out long x) ? x
        : body[name] is JsonValue d && d.GetValueKind() == JsonValueKind.Number && d.TryGetValue(out double y) && y == Math.Floor(y)
            && Math.Abs(y) < 9e18 ? (long)y
        : throw new ServeException(400, name, $"{name} must be an integer");

    private static double Number(JsonObject body, string name, double fallback) => body[name] switch
    {
        null => fallback,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.GetValue<double>(),
        _ => throw new ServeException(400, name, $"{name} must be a number"),
    };

    private static bool Bool(JsonObject body, string name) => body[name] switch
    {
        null => false,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        _ => throw new ServeException(400, name, $"{name} must be true or false"),
    };
}
