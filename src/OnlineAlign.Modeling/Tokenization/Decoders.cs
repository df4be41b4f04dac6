using System.Text;
using System.Text.Json;
using static OnlineAlign.Modeling.Tokenization.TokenizerJsonParts;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// tokenizer.json decoders that real model files use: ByteLevel (GPT-2's byte table back to UTF-8; added tokens kept
/// as they are), and for SentencePiece-style files Replace ("▁" to space), ByteFallback (&lt;0xNN&gt; runs to UTF-8),
/// Fuse, Strip, in a Sequence. Each turns a list of token strings into another, as transformers.js' decoders do.
/// </summary>
internal abstract class Decoder
{
    public abstract List<string> Chain(List<string> tokens);

    public static Decoder? From(JsonElement part, string where, IReadOnlySet<string> addedTokens)
    {
        if (part.ValueKind == JsonValueKind.Null) return null;
        string type = Type(part, where);
        return type switch
        {
            "ByteLevel" => new ByteLevelDecoder(addedTokens),
            "Replace" => Pattern(part, where) is (string literal, false)
                ? new Replace(literal, RequiredString(part, "content", where))
                : throw new NotSupportedException($"{where} 'Replace' with a Regex pattern is not supported"),
            "ByteFallback" => new ByteFallback(),
            "Fuse" => new Fuse(),
            "Strip" => RequiredString(part, "content", where) is { Length: 1 } content
                ? new Strip(content[0], Int(part, "start", where, 0), Int(part, "stop", where, 0))
                : throw new NotSupportedException($"{where} 'Strip' content must be one character"),
            "Sequence" => new Sequence([.. Array(part, "decoders", where).Select((d, i) => From(d, $"{where}.decoders[{i}]", addedTokens)
                ?? throw new InvalidDataException($"{where}.decoders[{i}] is null"))]),
            _ => throw Unsupported(where, type),
        };
    }

    private sealed class ByteLevelDecoder(IReadOnlySet<string> addedTokens) : Decoder
    {
        // Runs of vocabulary tokens are byte-decoded together (a character may span tokens); added tokens stand apart.
        public override List<string> Chain(List<string> tokens)
        {
            var result = new List<string>();
            var run = new StringBuilder();
            foreach (string token in tokens)
            {
                if (!addedTokens.Contains(token)) { run.Append(token); continue; }
                if (run.Length > 0) { result.Add(ByteLevel.Decode(run.ToString())); run.Clear(); }
                result.Add(token);
            }
            if (run.Length > 0) result.Add(ByteLevel.Decode(run.ToString()));
            return result;
        }
    }

    private sealed class Replace(string pattern, string content) : Decoder
    {
        public override List<string> Chain(List<string> tokens) =>
            pattern.Length == 0 ? tokens : [.. tokens.Select(t => t.Replace(pattern, content, StringComparison.Ordinal))];
    }

    private sealed class ByteFallback : Decoder
    {
        public override List<string> Chain(List<string> tokens)
        {
            var result = new List<string>();
            var bytes = new List<byte>();
            foreach (string token in tokens)
            {
                if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                    && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b))
                {
                    bytes.Add(b);
                    continue;
                }
                if (bytes.Count > 0) { result.Add(Encoding.UTF8.GetString([.. bytes])); bytes.Clear(); }
                result.Add(token);
            }
            if (bytes.Count > 0) result.Add(Encoding.UTF8.GetString([.. bytes]));
            return result;
        }
    }

    private sealed class Fuse : Decoder
    {
        public override List<string> Chain(List<string> tokens) => [string.Concat(tokens)];
    }

    /// <summary>Up to <c>start</c> leading and <c>stop</c> trailing copies of one character off each token.</summary>
    private sealed class Strip(char content, int start, int stop) : Decoder
    {
        public override List<string> Chain(List<string> tokens) => [.. tokens.Select(token =>
        {
            int from = 0;
            while (from < start && from < token.Length && token[from] == content) from++;
            int to = token.Length;
            while (token.Length - to < stop && to > from && token[to - 1] == content) to--;
            return token[from..to];
        })];
    }

    private sealed class Sequence(Decoder[] steps) : Decoder
    {
        public override List<string> Chain(List<string> tokens)
        {
            foreach (var step in steps) tokens = step.Chain(tokens);
            return tokens;
        }
    }
}
