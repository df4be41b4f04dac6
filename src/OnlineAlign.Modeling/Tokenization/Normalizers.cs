using System.Text;
using System.Text.Json;
using static OnlineAlign.Modeling.Tokenization.TokenizerJsonParts;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// tokenizer.json normalizers that real model files use: NFC (Qwen2/Qwen3), Prepend and Replace (Llama-2's and
/// Gemma's SentencePiece-style "▁" for spaces) and Sequence. Each applies to one piece of text between added tokens.
/// </summary>
internal abstract class Normalizer
{
    public abstract string Normalize(string text);

    /// <summary>False for an empty Sequence: added tokens with normalized=true then match the raw text just the same.</summary>
    public virtual bool ChangesText => true;

    public static Normalizer? From(JsonElement part, string where)
    {
        if (part.ValueKind == JsonValueKind.Null) return null;
        string type = Type(part, where);
        return type switch
        {
            "NFC" => new Nfc(),
            "Prepend" => new Prepend(RequiredString(part, "prepend", where)),
            "Replace" => Pattern(part, where) is (string literal, false)
                ? new Replace(literal, RequiredString(part, "content", where))
                : throw new NotSupportedException($"{where} 'Replace' with a Regex pattern is not supported"),
            "Sequence" => new Sequence([.. Array(part, "normalizers", where).Select((n, i) => From(n, $"{where}.normalizers[{i}]")!)]),
            _ => throw Unsupported(where, type),
        };
    }

    private sealed class Nfc : Normalizer
    {
        public override string Normalize(string text) => text.Normalize(NormalizationForm.FormC);
    }

    private sealed class Prepend(string prefix) : Normalizer
    {
        public override string Normalize(string text) => prefix + text;
    }

    private sealed class Replace(string pattern, string content) : Normalizer
    {
        public override string Normalize(string text) => pattern.Length == 0 ? text : text.Replace(pattern, content, StringComparison.Ordinal);
    }

    private sealed class Sequence(Normalizer[] steps) : Normalizer
    {
        public override string Normalize(string text)
        {
            foreach (var step in steps) text = step.Normalize(text);
            return text;
        }

        public override bool ChangesText => steps.Any(s => s.ChangesText);
    }
}
