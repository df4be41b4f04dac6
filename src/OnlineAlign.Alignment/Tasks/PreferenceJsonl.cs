using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnlineAlign.Alignment.Tasks;

/// <summary>One human or synthetic preference: a prompt with a better and a worse response.</summary>
public sealed record PreferenceItem(string Prompt, string Chosen, string Rejected);

/// <summary>Preference sets as JSONL: {"prompt": ..., "chosen": ..., "rejected": ...} per line (RewardBench's field names).</summary>
public static class PreferenceJsonl
{
    public static IReadOnlyList<PreferenceItem> Parse(IEnumerable<string> lines, string source) =>
        Parse(lines, source, int.MaxValue, int.MaxValue).Select(p => p.Item).ToList();

    /// <summary>
    /// The file's pairs with their line numbers; a line that is not such an object, has an empty or over-long field, or
    /// whose chosen and rejected are the same text is refused naming the file and the line, and so is a line past
    /// <paramref name="maxRows"/> pairs.
    /// </summary>
    /// <param name="maxFieldBytes">the most UTF-8 bytes of one field</param>
    public static IReadOnlyList<(int Line, PreferenceItem Item)> Parse(IEnumerable<string> lines, string source, int maxRows, int maxFieldBytes)
    {
        var items = new List<(int, PreferenceItem)>();
        foreach (var (number, obj) in JsonlObjects.Read(lines, source))
        {
            if (items.Count == maxRows) throw new InvalidDataException($"{source}:{number}: more than {maxRows} preference pairs");
            string Field(string name)
            {
                if (obj[name] is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
                    throw new InvalidDataException($"{source}:{number}: field '{name}' must be a string");
                string text = v.GetValue<string>();
                if (text.Length == 0) throw new InvalidDataException($"{source}:{number}: field '{name}' is empty");
                int bytes = Encoding.UTF8.GetByteCount(text);
                if (bytes > maxFieldBytes)
                    throw new InvalidDataException($"{source}:{number}: field '{name}' is {bytes} bytes; the limit is {maxFieldBytes}");
                return text;
            }
            var item = new PreferenceItem(Field("prompt"), Field("chosen"), Field("rejected"));
            if (item.Chosen == item.Rejected) throw new InvalidDataException($"{source}:{number}: 'chosen' and 'rejected' are the same text");
            items.Add((number, item));
        }
        if (items.Count == 0) throw new InvalidDataException($"{source}: no preference pairs");
        return items;
    }
}
