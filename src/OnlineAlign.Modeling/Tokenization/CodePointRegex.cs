using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// A tokenizer.json split pattern run as Rust's regex (and JavaScript's with the u flag) run it: over code points.
/// .NET's Regex sees UTF-16 units, so an emoji or an astral letter (𝒜, 𠀀) would be two "surrogate" characters that
/// neither \p{L} nor \p{S} matches, and `?` or {1,3} would count it twice. The pattern therefore runs on a shadow of
/// the text in which each code point outside the BMP stands as one BMP character of the same Unicode category, and
/// the matches are mapped back. The case-insensitive contraction group, which JavaScript cannot parse, is rewritten
/// as transformers.js rewrites it (ASCII letters only). Every match runs with a timeout, and patterns that backtrack
/// without end on simple probe texts are refused when the tokenizer loads.
/// </summary>
internal sealed class CodePointRegex
{
    /// <summary>How long one match may take: real patterns take microseconds.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);

    private readonly Regex _regex;

    public CodePointRegex(string pattern, string where)
    {
        pattern = pattern.Replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))", StringComparison.Ordinal);
        try { _regex = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant, Timeout); }
        catch (ArgumentException e) { throw new NotSupportedException($"{where} pattern is not a supported regular expression: {e.Message}"); }
        foreach (string probe in Probes)
        {
            try { foreach (var _ in _regex.EnumerateMatches(probe)) { } }
            catch (RegexMatchTimeoutException)
            {
                throw new InvalidDataException($"{where} pattern took longer than {Timeout.TotalSeconds:0.#} s on a {probe.Length}-character test " +
                    $"text (catastrophic backtracking)");
            }
        }
    }

    // Texts on which catastrophic patterns ((a+)+$ and the like) backtrack without end: one is refused at load.
    private static readonly string[] Probes =
        [new string('a', 4096) + "!", new string(' ', 4096) + "!", new string('1', 4096) + "!",
            string.Concat(Enumerable.Repeat("a ", 2048)) + "\u0000", string.Concat(Enumerable.Repeat("ab", 2048)) + "!"];

    /// <summary>The non-empty matches in <paramref name="text"/> (start and length in UTF-16 units of the text).</summary>
    public List<(int Start, int Length)> Matches(string text)
    {
        var result = new List<(int, int)>();
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF'))
        {
            foreach (var m in _regex.EnumerateMatches(text))
                if (m.Length > 0) result.Add((m.Index, m.Length));
            return result;
        }
        // Shadow: one char per code point; starts[i] is where shadow char i begins in the text (plus the end).
        var shadow = new StringBuilder(text.Length);
        var starts = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length; i++)
        {
            starts.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                shadow.Append(Stand(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]))));
                i++;
            }
            else shadow.Append(text[i]);
        }
        starts.Add(text.Length);
        foreach (var m in _regex.EnumerateMatches(shadow.ToString()))
            if (m.Length > 0) result.Add((starts[m.Index], starts[m.Index + m.Length] - starts[m.Index]));
        return result;
    }

    /// <summary>A BMP character of the category, none of them named in the real patterns' character ranges.</summary>
    private static char Stand(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter => '\uFF21',
        UnicodeCategory.LowercaseLetter => '\uFF41',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\u02B0',
        UnicodeCategory.OtherLetter => '\uA000',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.DecimalDigitNumber => '\uFF10',
        UnicodeCategory.LetterNumber => '\u2160',
        UnicodeCategory.OtherNumber => '\u00B2',
        UnicodeCategory.SpaceSeparator => '\u2000',
        UnicodeCategory.Format => '\u2060',
        UnicodeCategory.PrivateUse => '\uE000',
        UnicodeCategory.ConnectorPunctuation => '\u203F',
        UnicodeCategory.DashPunctuation => '\u2010',
        UnicodeCategory.OpenPunctuation => '\u2045',
        UnicodeCategory.ClosePunctuation => '\u2046',
        UnicodeCategory.InitialQuotePunctuation => '\u00AB',
        UnicodeCategory.FinalQuotePunctuation => '\u00BB',
        UnicodeCategory.OtherPunctuation => '\u00A1',
        UnicodeCategory.MathSymbol => '\u00B1',
        UnicodeCategory.CurrencySymbol => '\u00A2',
        UnicodeCategory.ModifierSymbol => '\u02C2',
        UnicodeCategory.OtherSymbol => '\u00A9',
        _ => '\u0378', // unassigned (no astral control, surrogate or line/paragraph separator exists)
    };
}
