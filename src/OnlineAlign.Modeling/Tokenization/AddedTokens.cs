namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// A tokenizer.json's added tokens (special or not), split out of the text before anything else sees it: at each
/// position the longest added token that starts there is taken, left to right (Rust's and transformers.js'
/// leftmost-longest match). lstrip/rstrip remove the whitespace next to the token, as transformers.js does.
/// </summary>
internal sealed class AddedTokens
{
    public sealed record Token(string Content, int Id, bool Special, bool LStrip, bool RStrip);

    private sealed class Node
    {
        public Dictionary<char, Node>? Next;
        public Token? End;
    }

    private readonly Node _root = new();
    public IReadOnlyList<Token> All { get; }
    public IReadOnlyDictionary<string, Token> ByContent { get; }

    public AddedTokens(IReadOnlyList<Token> tokens)
    {
        All = tokens;
        var byContent = new Dictionary<string, Token>();
        foreach (var token in tokens)
        {
            byContent[token.Content] = token;
            var node = _root;
            foreach (char c in token.Content)
            {
                node.Next ??= [];
                if (!node.Next.TryGetValue(c, out var child)) node.Next[c] = child = new Node();
                node = child;
            }
            node.End = token;
        }
        ByContent = byContent;
    }

    /// <summary>The text as pieces: plain text (Token null) and added tokens, stripped as their flags say.</summary>
    public List<(string Text, Token? Token)> Split(string text)
    {
        var sections = new List<(string Text, Token? Token)>();
        int start = 0, i = 0;
        while (i < text.Length)
        {
            Token? match = null;
            var node = _root;
            for (int j = i; j < text.Length && node.Next is not null && node.Next.TryGetValue(text[j], out node); j++)
                if (node.End is not null) match = node.End;
            if (match is null) { i++; continue; }
            if (i > start) sections.Add((text[start..i], null));
            sections.Add((match.Content, match));
            i += match.Content.Length;
            start = i;
        }
        if (start < text.Length) sections.Add((text[start..], null));
        for (int s = 0; s < sections.Count; s++)
        {
            if (sections[s].Token is not { } token) continue;
            if (token.LStrip && s > 0 && sections[s - 1].Token is null) sections[s - 1] = (sections[s - 1].Text.TrimEnd(), null);
            if (token.RStrip && s + 1 < sections.Count && sections[s + 1].Token is null) sections[s + 1] = (sections[s + 1].Text.TrimStart(), null);
        }
        return sections;
    }
}
