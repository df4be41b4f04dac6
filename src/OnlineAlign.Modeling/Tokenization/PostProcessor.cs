using System.Text.Json;
using static OnlineAlign.Modeling.Tokenization.TokenizerJsonParts;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// tokenizer.json post-processors that real model files use: TemplateProcessing (its "single" template: the BOS
/// Llama-2, Llama-3.1 and Gemma add), ByteLevel (offsets only: ids unchanged) and Sequence. They apply only when
/// special tokens are asked for (transformers' add_special_tokens=True).
/// </summary>
internal abstract class PostProcessor
{
    public abstract List<int> Apply(List<int> ids);

    public static PostProcessor? From(JsonElement part, string where)
    {
        if (part.ValueKind == JsonValueKind.Null) return null;
        string type = Type(part, where);
        return type switch
        {
            "ByteLevel" => new Unchanged(),
            "Sequence" => new Sequence([.. Array(part, "processors", where).Select((p, i) => From(p, $"{where}.processors[{i}]")
                ?? throw new InvalidDataException($"{where}.processors[{i}] is null"))]),
            "TemplateProcessing" => TemplateFrom(part, where),
            _ => throw Unsupported(where, type),
        };
    }

    private static Template TemplateFrom(JsonElement part, string where)
    {
        if (!part.TryGetProperty("special_tokens", out var specials) || specials.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{where}.special_tokens must be an object");
        var items = new List<int[]?>(); // null: the sequence itself ("A")
        int i = 0;
        foreach (var item in Array(part, "single", where))
        {
            string at = $"{where}.single[{i++}]";
            if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("SpecialToken", out var special))
            {
                string name = RequiredString(special, "id", at + ".SpecialToken");
                if (!specials.TryGetProperty(name, out var entry) || entry.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException($"{at}: special token '{name}' is not in {where}.special_tokens");
                items.Add([.. Array(entry, "ids", $"{where}.special_tokens['{name}']").Select(id =>
                    id.ValueKind == JsonValueKind.Number && id.TryGetInt32(out int n) && n >= 0 ? n
                    : throw new InvalidDataException($"{where}.special_tokens['{name}'].ids must hold token ids"))]);
            }
            else if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("Sequence", out var sequence))
            {
                string id = RequiredString(sequence, "id", at + ".Sequence");
                if (id != "A") throw new NotSupportedException($"{at}: sequence '{id}' in a single template is not supported");
                items.Add(null);
            }
            else throw new InvalidDataException($"{at} is neither a SpecialToken nor a Sequence");
        }
        return new Template(items);
    }

    private sealed class Unchanged : PostProcessor
    {
        public override List<int> Apply(List<int> ids) => ids;
    }

    private sealed class Template(List<int[]?> items) : PostProcessor
    {
        public override List<int> Apply(List<int> ids)
        {
            var result = new List<int>(ids.Count + 4);
            foreach (var item in items) result.AddRange(item ?? (IEnumerable<int>)ids);
            return result;
        }
    }

    private sealed class Sequence(PostProcessor[] steps) : PostProcessor
    {
        public override List<int> Apply(List<int> ids)
        {
            foreach (var step in steps) ids = step.Apply(ids);
            return ids;
        }
    }

    /// <summary>The ids a post-processor adds to an empty text (for the vocabulary check).</summary>
    public IEnumerable<int> AddedIds() => Apply([]);
}
