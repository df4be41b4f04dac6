using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnlineAlign.Alignment.Tasks;

/// <summary>One human or synthetic preference: a prompt with a better and a worse response.</summary>
public sealed record PreferenceItem(string Prompt, string Chosen, string Rejected);

/// <summary>Preference sets as JSONL: {"prompt": ..., "chosen": ..., "rejected": ...} per line.</summary>
public static class PreferenceJsonl
{
    public static IReadOnlyList<PreferenceItem> Parse(IEnumerable<string> lines, string source)
    {
        var items = new List<PreferenceItem>();
        foreach (var (number, obj) in JsonlObjects.Read(lines, source))
        {
            string Field(string name) => obj[name] is JsonValue v && v.GetValueKind() == JsonValueKind.String
                ? v.GetValue<string>() : throw new InvalidDataException($"{source}:{number}: field '{name}' must be a string");
            items.Add(new PreferenceItem(Field("prompt"), Field("chosen"), Field("rejected")));
        }
        if (items.Count == 0) throw new InvalidDataException($"{source}: no preference pairs");
        return items;
    }
}
