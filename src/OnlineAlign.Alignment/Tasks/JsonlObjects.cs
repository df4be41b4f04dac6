using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnlineAlign.Alignment.Tasks;

/// <summary>The JSON objects of a JSONL file's non-blank lines, each with its 1-based line number; a broken line names itself.</summary>
public static class JsonlObjects
{
    public static IEnumerable<(int Line, JsonObject Object)> Read(IEnumerable<string> lines, string source)
    {
        int number = 0;
        foreach (var raw in lines)
        {
            number++;
            string line = raw.Trim();
            if (line.Length == 0) continue;
            JsonObject obj;
            try
            {
                obj = JsonNode.Parse(line) as JsonObject ?? throw new InvalidDataException($"{source}:{number}: expected a JSON object");
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{source}:{number}: not valid JSON: {e.Message}", e);
            }
            yield return (number, obj);
        }
    }
}
