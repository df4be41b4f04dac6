using System.Buffers.Binary;
using System.Text.Json;

namespace OnlineAlign.Modeling.Checkpoints;

/// <summary>One tensor of a safetensors header: dtype, shape and byte range within the data section.</summary>
public sealed record TensorEntry(string DType, long[] Shape, long Begin, long End)
{
    public long Bytes => End - Begin;
}

/// <summary>
/// A safetensors header, validated before anything is allocated for its tensors: a file is hostile input, and a header
/// is what decides how much a reader allocates. The header length is sane and inside the file, the JSON is an object,
/// every tensor has a known dtype, a shape of non-negative sizes whose product is computed in checked 64-bit, and a
/// byte range inside the data section that is ordered, non-negative, exactly product(shape) x dtype size long, and
/// overlaps no other tensor's. Every refusal names the file, the tensor and the problem.
/// </summary>
public sealed record SafeTensorsHeader(IReadOnlyDictionary<string, TensorEntry> Tensors, Dictionary<string, string> Metadata, long DataStart)
{
    /// <summary>The largest header read (the reference implementation's limit is 100 MB too).</summary>
    public const long MaxHeaderBytes = 100_000_000;
    public const int MaxTensors = 1_000_000;
    public const int MaxRank = 16;

    public static SafeTensorsHeader Read(FileStream file, string path)
    {
        long fileLength = file.Length;
        if (fileLength < 8) throw new InvalidDataException($"{path}: {fileLength} bytes is too short to be a safetensors file (8-byte header length missing)");
        Span<byte> lengthBytes = stackalloc byte[8];
        file.Position = 0;
        file.ReadExactly(lengthBytes);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (length < 2 || length > MaxHeaderBytes || length > (ulong)(fileLength - 8))
            throw new InvalidDataException($"{path}: header length {length} is invalid for a file of {fileLength} bytes (not a safetensors file, " +
                $"or truncated)");
        var json = new byte[length];
        file.ReadExactly(json);
        long dataStart = 8 + (long)length, dataLength = fileLength - dataStart;
        JsonDocument document;
        try { document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: header is not valid JSON: {e.Message}", e); }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: header is not a JSON object");
            var tensors = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>();
            bool seenMetadata = false;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (seenMetadata) throw new InvalidDataException($"{path}: __metadata__ appears twice");
                    seenMetadata = true;
                    ReadMetadata(property.Value, path, metadata);
                    continue;
                }
                if (tensors.Count >= MaxTensors) throw new InvalidDataException($"{path}: more than {MaxTensors} tensors");
                if (property.Name.Length == 0) throw new InvalidDataException($"{path}: a tensor has an empty name");
                if (tensors.ContainsKey(property.Name)) throw new InvalidDataException($"{path}: tensor '{property.Name}' appears twice");
                tensors[property.Name] = Entry(property.Value, $"{path}: tensor '{Short(property.Name)}'", dataLength);
            }
            // Byte ranges must not overlap: a tensor read twice, or written over another, is not a valid file.
            TensorEntry? previous = null;
            string previousName = "";
            foreach (var (name, entry) in tensors.OrderBy(kv => kv.Value.Begin).ThenBy(kv => kv.Value.End))
            {
                if (previous is not null && entry.Begin < previous.End && entry.Bytes > 0)
                    throw new InvalidDataException($"{path}: tensor '{Short(name)}' (bytes {entry.Begin}-{entry.End}) overlaps tensor " +
                        $"'{Short(previousName)}' (bytes {previous.Begin}-{previous.End})");
                if (previous is null || entry.End > previous.End) { previous = entry; previousName = name; }
            }
            return new SafeTensorsHeader(tensors, metadata, dataStart);
        }
    }

    private static TensorEntry Entry(JsonElement node, string where, long dataLength)
    {
        if (node.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where} is not a JSON object");
        string dtype = node.TryGetProperty("dtype", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString()!
            : throw new InvalidDataException($"{where}: dtype is missing or not a string");
        int elementSize = SafeTensors.ElementSize(dtype)
            ?? throw new InvalidDataException($"{where}: dtype '{Short(dtype)}' is not supported (F32, BF16, F16, F64, I64, I32, U8, I8, BOOL)");
        var shape = Integers(node, "shape", where, maxCount: MaxRank);
        long count = 1;
        foreach (long size in shape)
        {
            if (size < 0) throw new InvalidDataException($"{where}: shape [{string.Join(", ", shape)}] has a negative size");
            try { count = checked(count * size); }
            catch (OverflowException) { throw new InvalidDataException($"{where}: shape [{string.Join(", ", shape)}] has more elements than a " +
                $"64-bit count holds"); }
        }
        var offsets = Integers(node, "data_offsets", where, maxCount: 2);
        if (offsets.Length != 2) throw new InvalidDataException($"{where}: data_offsets must be [begin, end], got {offsets.Length} numbers");
        long begin = offsets[0], end = offsets[1];
        if (begin < 0 || end < begin)
            throw new InvalidDataException($"{where}: data_offsets [{begin}, {end}] are not an ordered pair of non-negative offsets");
        if (end > dataLength)
            throw new InvalidDataException($"{where}: data_offsets [{begin}, {end}] end past the data section ({dataLength} bytes; truncated?)");
        long expected;
        try { expected = checked(count * elementSize); }
        catch (OverflowException) { throw new InvalidDataException($"{where}: shape [{string.Join(", ", shape)}] x {dtype} overflows 64-bit bytes"); }
        if (end - begin != expected)
            throw new InvalidDataException($"{where}: spans {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtype} needs {expected}");
        return new TensorEntry(dtype, shape, begin, end);
    }

    private static long[] Integers(JsonElement node, string field, string where, int maxCount)
    {
        if (!node.TryGetProperty(field, out var array) || array.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{where}: {field} is missing or not an array");
        if (array.GetArrayLength() > maxCount) throw new InvalidDataException($"{where}: {field} has {array.GetArrayLength()} entries; at most {maxCount}");
        return array.EnumerateArray().Select(n => n.ValueKind == JsonValueKind.Number && n.TryGetInt64(out long v) ? v
            : throw new InvalidDataException($"{where}: {field} holds {Short(n.GetRawText())}, not a 64-bit integer")).ToArray();
    }

    private static void ReadMetadata(JsonElement node, string path, Dictionary<string, string> metadata)
    {
        if (node.ValueKind == JsonValueKind.Null) return;
        if (node.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: __metadata__ is not a JSON object");
        foreach (var entry in node.EnumerateObject())
            metadata[entry.Name] = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()!
                : throw new InvalidDataException($"{path}: __metadata__ '{Short(entry.Name)}' is not a string");
    }

    private static string Short(string s) => s.Length > 100 ? s[..100] + "..." : s;
}
