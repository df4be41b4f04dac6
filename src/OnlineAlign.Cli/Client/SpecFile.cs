using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using OnlineAlign.Api.V1;

namespace OnlineAlign.Cli.Client;

/// <summary>
/// Reads a run spec file (onlinealign.v1.RunSpec as JSON). The protobuf parser's messages do not say which
/// field was wrong ("Invalid numeric value for type: x"), so a failed parse is explained by walking the
/// JSON against the message's descriptor: the error names the file and the field's path.
/// </summary>
public static class SpecFile
{
    public static RunSpec Load(string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"--spec: file '{file}' does not exist");
        string text = File.ReadAllText(file);
        try { return JsonParser.Default.Parse<RunSpec>(text); }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException)
        {
            JsonNode? root;
            try { root = JsonNode.Parse(text); }
            catch (JsonException json) { throw new InvalidDataException($"--spec {file}: not valid JSON: {json.Message}"); }
            string? where = root is JsonObject obj ? FirstProblem(obj, RunSpec.Descriptor, "") : "the file must hold one JSON object";
            throw new InvalidDataException($"--spec {file}: {where ?? e.Message}");
        }
    }

    private static string? FirstProblem(JsonObject obj, MessageDescriptor message, string prefix)
    {
        foreach (var (name, value) in obj)
        {
            var field = message.Fields.InDeclarationOrder().FirstOrDefault(f => f.Name == name || f.JsonName == name);
            string path = prefix + name;
            if (field is null)
                return $"field '{path}' is not a field of {message.Name} (fields: " +
                    $"{string.Join(", ", message.Fields.InDeclarationOrder().Select(f => f.Name))})";
            if (value is null) continue;
            string? problem = field.FieldType switch
            {
                FieldType.Message when value is JsonObject inner => FirstProblem(inner, field.MessageType, path + "."),
                FieldType.Message => $"field '{path}' must be an object",
                FieldType.String when value.GetValueKind() != JsonValueKind.String => $"field '{path}' must be a string, got {value.ToJsonString()}",
                FieldType.Bool when value.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False) =>
                    $"field '{path}' must be true or false, got {value.ToJsonString()}",
                FieldType.Double or FieldType.Float or FieldType.Int32 or FieldType.Int64 or FieldType.UInt32 or FieldType.UInt64
                    when !IsNumber(value, field.FieldType) =>
                        $"field '{path}' must be {(field.FieldType is FieldType.Double or FieldType.Float ? "a number" : "an integer")}, got " +
                            $"{value.ToJsonString()}",
                _ => null,
            };
            if (problem is not null) return problem;
        }
        return null;
    }

    private static bool IsNumber(JsonNode value, FieldType type)
    {
        // Protobuf JSON also accepts numbers as strings (64-bit integers usually are).
        string raw = value.GetValueKind() switch
        {
            JsonValueKind.Number => value.ToJsonString(),
            JsonValueKind.String => value.GetValue<string>(),
            _ => "",
        };
        return type is FieldType.Double or FieldType.Float
            ? double.TryParse(raw, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _)
            : long.TryParse(raw, out _) || ulong.TryParse(raw, out _);
    }
}
