using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnlineAlign.Alignment.Tasks;

/// <summary>User prompt sets: one JSON object per line, {"prompt": "...", "answer": "..."} (answer optional).</summary>
public static class JsonlPrompts
{
    /// <param name="lines">The file's lines; <paramref name="source"/> names the file in errors.</param>
    public static IReadOnlyList<PromptItem> Parse(IEnumerable<string> lines, string source)
    {
        var items = new List<PromptItem>();
        foreach (var (number, obj) in JsonlObjects.Read(lines, source))
        {
            if (obj["prompt"] is not JsonValue p || p.GetValueKind() != JsonValueKind.String || p.GetValue<string>().Length == 0)
                throw new InvalidDataException($"{source}:{number}: field 'prompt' must be a non-empty string");
            string? answer = obj["answer"] switch
            {
                null => null,
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.ToJsonString(),
                _ => throw new InvalidDataException($"{source}:{number}: field 'answer' must be a string or a number"),
            };
            items.Add(new PromptItem(p.GetValue<string>(), answer, number));
        }
        if (items.Count == 0) throw new InvalidDataException($"{source}: no prompts");
        return items;
    }
}
