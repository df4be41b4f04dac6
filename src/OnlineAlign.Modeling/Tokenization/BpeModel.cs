using System.Collections.Concurrent;
using System.Text;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// A tokenizer.json BPE model: each word (a pre-tokenizer piece) starts as its code points and the adjacent pair with
/// the lowest merge rank is merged (the leftmost on a tie) until none is left; a heap keeps that O(n log n), since
/// SentencePiece-style files (Llama-2, Gemma) make a whole text one word. With ignore_merges a word that is itself in
/// the vocabulary is one token; with byte_fallback a piece outside the vocabulary becomes its UTF-8 bytes as
/// &lt;0xNN&gt; tokens (or unk when one is missing); fuse_unk makes a run of unknown pieces one unk. The vocabulary
/// includes the added tokens (as transformers.js and Rust's tokenizers look them up).
/// </summary>
internal sealed class BpeModel(Dictionary<string, int> vocab, Dictionary<(string, string), int> ranks, int? unkId, bool byteFallback,
    bool ignoreMerges, bool fuseUnk)
{
    private readonly ConcurrentDictionary<string, string[]> _cache = new();
    private const int CacheWords = 100_000, CacheWordLength = 256;

    /// <summary>Appends the ids of one word to <paramref name="ids"/>; unk runs fuse only after <paramref name="sectionStart"/>.</summary>
    public void Encode(string word, List<int> ids, int sectionStart)
    {
        if (word.Length == 0) return;
        if (ignoreMerges && vocab.TryGetValue(word, out int whole)) { Add(ids, whole); return; }
        foreach (string piece in Merge(word))
        {
            if (vocab.TryGetValue(piece, out int id)) { Add(ids, id); continue; }
            if (byteFallback && FallbackBytes(piece) is { } bytes) { foreach (int b in bytes) Add(ids, b); continue; }
            if (unkId is int unk && !(fuseUnk && ids.Count > sectionStart && ids[^1] == unk)) ids.Add(unk);
            // Without an unk token the piece has no id (Rust's tokenizers drop it too).
        }
    }

    private static void Add(List<int> ids, int id) => ids.Add(id);

    private int[]? FallbackBytes(string piece)
    {
        var bytes = Encoding.UTF8.GetBytes(piece);
        var ids = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
            if (!vocab.TryGetValue($"<0x{bytes[i]:X2}>", out ids[i])) return null;
        return ids;
    }

    private string[] Merge(string word)
    {
        if (word.Length < CacheWordLength && _cache.TryGetValue(word, out var cached)) return cached;
        var result = MergeUncached(word);
        if (word.Length < CacheWordLength)
        {
            if (_cache.Count >= CacheWords) _cache.Clear();
            _cache[word] = result;
        }
        return result;
    }

    private string[] MergeUncached(string word)
    {
        // Symbols as a linked list over code points; version[i] changes whenever symbol i or its right neighbour does,
        // so heap entries made before are recognised as stale.
        var symbols = new List<string>(word.Length);
        for (int i = 0; i < word.Length; i++)
        {
            int width = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            symbols.Add(word.Substring(i, width));
            i += width - 1;
        }
        int n = symbols.Count;
        if (n < 2) return [.. symbols];
        var next = new int[n];
        var prev = new int[n];
        var version = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; alive[i] = true; }
        var heap = new PriorityQueue<(int Node, int Version), (int Rank, int Position)>();
        void Push(int node)
        {
            if (next[node] >= 0 && ranks.TryGetValue((symbols[node], symbols[next[node]]), out int rank))
                heap.Enqueue((node, version[node]), (rank, node));
        }
        for (int i = 0; i + 1 < n; i++) Push(i);
        while (heap.TryDequeue(out var entry, out _))
        {
            int left = entry.Node;
            if (!alive[left] || version[left] != entry.Version) continue;
            int right = next[left];
            symbols[left] += symbols[right];
            alive[right] = false;
            next[left] = next[right];
            if (next[left] >= 0) prev[next[left]] = left;
            version[left]++;
            Push(left);
            if (prev[left] >= 0) { version[prev[left]]++; Push(prev[left]); }
        }
        var result = new List<string>();
        for (int i = 0; i >= 0; i = next[i]) result.Add(symbols[i]);
        return [.. result];
    }
}
