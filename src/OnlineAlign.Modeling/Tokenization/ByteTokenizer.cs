using System.Text;
using System.Text.Json.Nodes;

namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// Byte-level tokenizer for tiny models: pad 0, bos 1, eos 2, then the 256 byte values at 3..258.
/// Needs no data file, so built-in models and tests are self-contained.
/// </summary>
public sealed class ByteTokenizer : ITextTokenizer
{
    public const int Offset = 3;
    public int VocabSize => 256 + Offset;
    public int PadId => 0;
    public int BosId => 1;
    public int EosId => 2;

    public int[] Encode(string text) => Encoding.UTF8.GetBytes(text).Select(b => b + Offset).ToArray();

    public string Decode(IEnumerable<int> ids) =>
        Encoding.UTF8.GetString(ids.Where(i => i >= Offset && i < Offset + 256).Select(i => (byte)(i - Offset)).ToArray());

    public IEnumerable<(string Name, string Content)> HfFiles()
    {
        var config = new JsonObject
        {
            ["tokenizer_class"] = "OnlineAlignByteTokenizer",
            ["onlinealign_tokenizer"] = "bytes",
            ["pad_token_id"] = PadId, ["bos_token_id"] = BosId, ["eos_token_id"] = EosId, ["byte_offset"] = Offset,
        };
        yield return ("tokenizer_config.json", config.ToJsonString());
    }
}
