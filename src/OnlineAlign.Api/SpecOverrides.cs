using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace OnlineAlign.Api.V1;

/// <summary>
/// "path=value" settings of RunSpec fields on top of another spec (a fork's, on its parent's): the path is the field's
/// runs.proto name, sections joined by dots (loss.beta, judge.kind, rounds), resolved against the message descriptors,
/// so a field added to runs.proto can be set with nothing added here. Each problem names the setting and the field;
/// ranges are the spec sections' own checks, run on the result. Shared by the CLI and the silo (the silo decides).
/// </summary>
public static class SpecOverrides
{
    public const int MaxOverrides = 32;
    public const int MaxLength = 256;

    /// <summary>
    /// Fields a fork cannot change: the model section (the checkpoint fixes the model, its tokenizer and chat template,
    /// and a LoRA run's adapter shape), and the warm start's settings (a fork starts from a checkpoint, not a warm start).
    /// </summary>
    private static readonly Dictionary<string, string> Fixed = new(StringComparer.Ordinal)
    {
        ["model"] = "the checkpoint it starts from fixes the model and its tokenizer",
        ["sft_steps"] = "a fork starts from the parent's checkpoint and does not warm-start",
        ["sft_learning_rate"] = "a fork starts from the parent's checkpoint and does not warm-start",
        ["eft_examples"] = "a fork starts from the parent's checkpoint and does not warm-start",
        ["eft_source"] = "a fork starts from the parent's checkpoint and does not warm-start",
    };

    /// <summary>A copy of <paramref name="spec"/> with the settings applied, and every setting's problem (the copy is not to be used then).</summary>
    public static (RunSpec Spec, List<string> Problems) Apply(RunSpec spec, IReadOnlyList<string> overrides)
    {
        var result = spec.Clone();
        var problems = new List<string>();
        if (overrides.Count > MaxOverrides)
        {
            problems.Add($"{overrides.Count} overrides; the limit is {MaxOverrides}");
            return (result, problems);
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var setting in overrides)
        {
            if (Apply(result, setting, seen) is { } problem) problems.Add(problem);
        }
        return (result, problems);
    }

    private static string? Apply(RunSpec spec, string setting, HashSet<string> seen)
    {
        if (setting.Length > MaxLength) return $"an override is {setting.Length} characters long; the limit is {MaxLength}";
        int equals = setting.IndexOf('=');
        if (equals <= 0) return $"'{setting}' is not path=value (e.g. loss.beta=0.05)";
        string path = setting[..equals].Trim();
        string value = setting[(equals + 1)..].Trim();
        if (!seen.Add(path)) return $"{path} is set twice";
        if (Fixed.TryGetValue(path.Split('.')[0], out var why)) return $"{path} cannot be changed by a fork: {why}";

        IMessage message = spec;
        var segments = path.Split('.');
        for (int i = 0; i < segments.Length; i++)
        {
            string prefix = string.Join('.', segments[..i]);
            var descriptor = message.Descriptor;
            var field = descriptor.FindFieldByName(segments[i]);
            if (field is null)
                return $"{path}: '{segments[i]}' is not a field of {(prefix.Length == 0 ? "the run spec" : prefix)} " +
                    $"(fields: {string.Join(", ", descriptor.Fields.InDeclarationOrder().Select(f => f.Name))})";
            if (field.IsRepeated || field.IsMap) return $"{path} is a list; a fork cannot set it";
            if (i < segments.Length - 1)
            {
                if (field.FieldType != FieldType.Message) return $"{path}: {string.Join('.', segments[..(i + 1)])} is a value, not a section";
                var inner = (IMessage?)field.Accessor.GetValue(message);
                if (inner is null)
                {
                    inner = field.MessageType.Parser.ParseFrom(ByteString.Empty);
                    field.Accessor.SetValue(message, inner);
                }
                message = inner;
                continue;
            }
            if (field.FieldType == FieldType.Message)
                return $"{path} is a section; set one of its fields ({path}.{field.MessageType.Fields.InDeclarationOrder()[0].Name}=...)";
            if (Parse(field.FieldType, value) is not { } parsed)
                return $"{path} must be {Kind(field.FieldType)}, got '{value}'";
            field.Accessor.SetValue(message, parsed);
        }
        return null;
    }

    private static object? Parse(FieldType type, string value)
    {
        const NumberStyles integer = NumberStyles.AllowLeadingSign;
        var c = CultureInfo.InvariantCulture;
        return type switch
        {
            FieldType.String => value,
            FieldType.Bool => value switch { "true" => true, "false" => false, _ => null },
            FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => int.TryParse(value, integer, c, out int i) ? i : null,
            FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => long.TryParse(value, integer, c, out long l) ? l : null,
            FieldType.UInt32 or FieldType.Fixed32 => uint.TryParse(value, NumberStyles.None, c, out uint u) ? u : null,
            FieldType.UInt64 or FieldType.Fixed64 => ulong.TryParse(value, NumberStyles.None, c, out ulong ul) ? ul : null,
            FieldType.Double => double.TryParse(value, NumberStyles.Float, c, out double d) && double.IsFinite(d) ? d : null,
            FieldType.Float => float.TryParse(value, NumberStyles.Float, c, out float f) && float.IsFinite(f) ? f : null,
            _ => null,
        };
    }

    private static string Kind(FieldType type) => type switch
    {
        FieldType.Bool => "true or false",
        FieldType.Double or FieldType.Float => "a finite number",
        FieldType.UInt32 or FieldType.UInt64 or FieldType.Fixed32 or FieldType.Fixed64 => "a whole number >= 0",
        _ => "a whole number",
    };
}
