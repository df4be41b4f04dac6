using System.Text;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// GPT-2's byte-to-unicode table, which byte-level BPE vocabularies are written in: printable bytes stand for
/// themselves, the others (space, control bytes, 0x7F-0xA0, 0xAD) for the characters from U+0100 on, in order.
/// </summary>
internal static class ByteLevel
{
    public static readonly char[] ByteToChar = Table();
    private static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

    // GPT-2's pre-tokenizer pattern, which ByteLevel applies when its use_regex is true.
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static char[] Table()
    {
        var table = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)(256 + next++);
        }
        return table;
    }

    /// <summary>The text's UTF-8 bytes, each as its table character.</summary>
    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>Table characters back to bytes and UTF-8 text (a character outside the table is byte 0, invalid UTF-8 is U+FFFD, as transformers.js
    /// decodes).</summary>
    public static string Decode(string symbols)
    {
        var bytes = new byte[symbols.Length];
        for (int i = 0; i < symbols.Length; i++) bytes[i] = CharToByte.TryGetValue(symbols[i], out byte b) ? b : (byte)0;
        return Encoding.UTF8.GetString(bytes);
    }
}
