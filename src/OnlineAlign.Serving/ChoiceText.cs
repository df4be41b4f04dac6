namespace OnlineAlign.Serving;

/// <summary>
/// One choice's text as its tokens arrive: decoded, cut at the first stop sequence, and released in pieces that never
/// need taking back (a partial UTF-8 character or the start of a possible stop sequence is held until it is decided), so
/// the streamed pieces concatenate to exactly the text a non-streaming request returns.
/// </summary>
internal sealed class ChoiceText(Func<IEnumerable<int>, string> decode, IReadOnlySet<int> stopIds, IReadOnlyList<string> stops, int maxTokens)
{
    private readonly List<int> _tokens = [];
    private int _released;

    public string Text { get; private set; } = "";
    public string? FinishReason { get; private set; }
    /// <summary>Tokens the model generated for this choice (its end-of-turn token included).</summary>
    public int Generated { get; private set; }

    /// <summary>Takes the next token; returns the text it releases ("" when none).</summary>
    public string Add(int token)
    {
        if (FinishReason is not null) return "";
        Generated++;
        if (stopIds.Contains(token)) return Finish("stop", Text);
        _tokens.Add(token);
        string full = decode(_tokens);
        int cut = stops.Select(s => full.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
        if (cut >= 0) return Finish("stop", full[..cut]);
        if (_tokens.Count >= maxTokens) return Finish("length", full);
        Text = full;
        int safe = full.Length;
        while (safe > _released && full[safe - 1] == '\uFFFD') safe--;   // maybe a character still arriving
        safe -= Math.Min(safe - _released, HeldForStops(full[..safe]));
        return Release(safe);
    }

    /// <summary>Ends the choice (the generation ended without it finishing: its token limit); returns the text still held.</summary>
    public string End() => FinishReason is null ? Finish("length", Text) : "";

    private string Finish(string reason, string text)
    {
        FinishReason = reason;
        Text = text;
        return Release(text.Length);
    }

    private string Release(int upTo)
    {
        if (upTo <= _released) return "";
        string piece = Text[_released..upTo];
        _released = upTo;
        return piece;
    }

    /// <summary>The longest end of the text that begins some stop sequence.</summary>
    private int HeldForStops(string text)
    {
        int held = 0;
        foreach (string stop in stops)
            for (int length = Math.Min(stop.Length - 1, text.Length); length > held; length--)
                if (text.EndsWith(stop[..length], StringComparison.Ordinal)) { held = length; break; }
        return held;
    }
}
