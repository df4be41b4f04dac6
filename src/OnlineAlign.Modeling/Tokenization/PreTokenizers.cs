using System.Text.Json;
using static OnlineAlign.Modeling.Tokenization.TokenizerJsonParts;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// tokenizer.json pre-tokenizers that real model files use: Split (a Regex or String pattern, with the behaviours
/// Isolated, Removed, MergedWithPrevious and MergedWithNext), ByteLevel (GPT-2's byte table, with or without its own
/// regex) and Sequence. Each turns the pieces it is given into smaller pieces, the words BPE then merges within.
/// </summary>
internal abstract class PreTokenizer
{
    /// <summary>Adds the pieces of <paramref name="text"/> to <paramref name="output"/>.</summary>
    public abstract void Split(string text, List<string> output);

    public static PreTokenizer? From(JsonElement part, string where)
    {
        if (part.ValueKind == JsonValueKind.Null) return null;
        string type = Type(part, where);
        return type switch
        {
            "Sequence" => new Sequence([.. Array(part, "pretokenizers", where).Select((p, i) => From(p, $"{where}.pretokenizers[{i}]")
                ?? throw new InvalidDataException($"{where}.pretokenizers[{i}] is null"))]),
            "ByteLevel" => new ByteLevelSplit(Bool(part, "add_prefix_space", where, false), Bool(part, "use_regex", where, true), where),
            "Split" => SplitFrom(part, where),
            _ => throw Unsupported(where, type),
        };
    }

    private static PatternSplit SplitFrom(JsonElement part, string where)
    {
        if (Bool(part, "invert", where, false)) throw new NotSupportedException($"{where} 'Split' with invert true is not supported");
        string behavior = RequiredString(part, "behavior", where);
        if (behavior is not ("Isolated" or "Removed" or "MergedWithPrevious" or "MergedWithNext"))
            throw new NotSupportedException($"{where} 'Split' behavior '{behavior}' is not supported");
        var (pattern, isRegex) = Pattern(part, where);
        return new PatternSplit(isRegex ? new CodePointRegex(pattern, where) : null, pattern, behavior);
    }

    private sealed class Sequence(PreTokenizer[] steps) : PreTokenizer
    {
        public override void Split(string text, List<string> output)
        {
            List<string> pieces = [text];
            foreach (var step in steps)
            {
                var next = new List<string>(pieces.Count * 2);
                foreach (string piece in pieces) step.Split(piece, next);
                pieces = next;
            }
            output.AddRange(pieces);
        }
    }

    /// <summary>Bytes as GPT-2's table characters, after GPT-2's own split when use_regex is true.</summary>
    private sealed class ByteLevelSplit(bool addPrefixSpace, bool useRegex, string where) : PreTokenizer
    {
        private readonly CodePointRegex? _regex = useRegex ? new CodePointRegex(ByteLevel.Gpt2Pattern, where) : null;

        public override void Split(string text, List<string> output)
        {
            if (addPrefixSpace && !text.StartsWith(' ')) text = " " + text;
            if (_regex is null) { output.Add(ByteLevel.Encode(text)); return; }
            foreach (var (start, length) in _regex.Matches(text)) output.Add(ByteLevel.Encode(text.Substring(start, length)));
        }
    }

    /// <summary>Split on a pattern's matches; what happens to each match is the behaviour (Rust's tokenizers semantics).</summary>
    private sealed class PatternSplit(CodePointRegex? regex, string literal, string behavior) : PreTokenizer
    {
        private List<(int Start, int Length)> Matches(string text)
        {
            if (regex is not null) return regex.Matches(text);
            var result = new List<(int, int)>();
            if (literal.Length == 0) return result;
            for (int at = text.IndexOf(literal, StringComparison.Ordinal); at >= 0; at = text.IndexOf(literal, at + literal.Length, StringComparison.Ordinal))
                result.Add((at, literal.Length));
            return result;
        }

        public override void Split(string text, List<string> output)
        {
            // Pieces as (start, end, isMatch), in order, covering the text.
            var pieces = new List<(int Start, int End, bool Match)>();
            int previous = 0;
            foreach (var (start, length) in Matches(text))
            {
                if (start > previous) pieces.Add((previous, start, false));
                pieces.Add((start, start + length, true));
                previous = start + length;
            }
            if (previous < text.Length) pieces.Add((previous, text.Length, false));

            for (int i = 0; i < pieces.Count; i++)
            {
                var (start, end, match) = pieces[i];
                switch (behavior)
                {
                    case "Isolated":
                        output.Add(text[start..end]);
                        break;
                    case "Removed":
                        if (!match) output.Add(text[start..end]);
                        break;
                    case "MergedWithPrevious":
                        // A gap followed by a match is one piece.
                        if (!match && i + 1 < pieces.Count && pieces[i + 1].Match) { output.Add(text[start..pieces[i + 1].End]); i++; }
                        else output.Add(text[start..end]);
                        break;
                    case "MergedWithNext":
                        // A match followed by a gap is one piece.
                        if (match && i + 1 < pieces.Count && !pieces[i + 1].Match) { output.Add(text[start..pieces[i + 1].End]); i++; }
                        else output.Add(text[start..end]);
                        break;
                }
            }
        }
    }
}
