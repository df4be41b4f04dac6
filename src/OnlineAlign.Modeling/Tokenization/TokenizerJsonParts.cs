using System.Text.Json;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// Reading the parts of a tokenizer.json: each part's "type" is looked up in the table of types this project
/// implements, and any other type (or option value) is refused by name when the folder loads, never skipped.
/// Errors are InvalidDataException (malformed) or NotSupportedException (well formed but not implemented); the
/// tokenizer's loader prefixes the file.
/// </summary>
internal static class TokenizerJsonParts
{
    /// <summary>The part's "type", or a refusal naming where it is.</summary>
    public static string Type(JsonElement part, string where)
    {
        if (part.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where} is not an object");
        if (!part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{where} has no \"type\" string");
        return type.GetString()!;
    }

    public static NotSupportedException Unsupported(string where, string type) => new($"{where} '{type}' is not supported");

    /// <summary>A string option, or null when absent or null.</summary>
    public static string? String(JsonElement part, string name, string where) =>
        !part.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null ? null
        : value.ValueKind == JsonValueKind.String ? value.GetString()
        : throw new InvalidDataException($"{where}.{name} must be a string");

    public static string RequiredString(JsonElement part, string name, string where) =>
        String(part, name, where) ?? throw new InvalidDataException($"{where}.{name} is missing");

    /// <summary>A boolean option, or <paramref name="fallback"/> when absent or null.</summary>
    public static bool Bool(JsonElement part, string name, string where, bool fallback) =>
        !part.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null ? fallback
        : value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidDataException($"{where}.{name} must be true or false"),
        };

    public static int Int(JsonElement part, string name, string where, int fallback) =>
        !part.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null ? fallback
        : value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int n) && n >= 0 ? n
        : throw new InvalidDataException($"{where}.{name} must be a non-negative integer");

    /// <summary>The elements of an array option (refused when absent or not an array).</summary>
    public static JsonElement.ArrayEnumerator Array(JsonElement part, string name, string where) =>
        part.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Array ? value.EnumerateArray()
        : throw new InvalidDataException($"{where}.{name} must be an array");

    /// <summary>A pattern object: {"String": "..."} or {"Regex": "..."}.</summary>
    public static (string Text, bool IsRegex) Pattern(JsonElement part, string where)
    {
        if (!part.TryGetProperty("pattern", out var pattern) || pattern.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{where}.pattern must be an object");
        if (String(pattern, "String", where + ".pattern") is { } literal) return (literal, false);
        if (String(pattern, "Regex", where + ".pattern") is { } regex) return (regex, true);
        throw new InvalidDataException($"{where}.pattern has neither \"String\" nor \"Regex\"");
    }

    /// <summary>Refuses an option that is present with a value other than the ones implemented.</summary>
    public static void RequireAbsentOr(JsonElement part, string name, string where, params object?[] allowed)
    {
        if (!part.TryGetProperty(name, out var value)) return;
        object? actual = value.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => value.GetString(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => value.GetRawText(),
        };
        if (!allowed.Any(a => Equals(a, actual)))
            throw new NotSupportedException($"{where}.{name} {value.GetRawText()} is not supported");
    }
}
