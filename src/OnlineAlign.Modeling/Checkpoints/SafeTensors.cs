using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Checkpoints;

/// <summary>
/// The safetensors format: u64 little-endian header length, a JSON header naming each tensor's dtype,
/// shape and byte range, then the raw little-endian bytes. Reads tensor by tensor (no whole-file buffer).
/// </summary>
public static class SafeTensors
{
    private static readonly Dictionary<string, ScalarType> DTypes = new()
    {
        ["F32"] = ScalarType.Float32, ["BF16"] = ScalarType.BFloat16, ["F16"] = ScalarType.Float16,
        ["F64"] = ScalarType.Float64, ["I64"] = ScalarType.Int64, ["I32"] = ScalarType.Int32,
        ["U8"] = ScalarType.Byte, ["I8"] = ScalarType.Int8, ["BOOL"] = ScalarType.Bool,
    };

    public static string Name(ScalarType type) =>
        DTypes.FirstOrDefault(kv => kv.Value == type).Key ?? throw new NotSupportedException($"dtype {type} cannot be saved as safetensors");

    /// <summary>The tensor type of a header's dtype name.</summary>
    public static ScalarType DType(string name, string path) => DTypes.TryGetValue(name, out var type) ? type
        : throw new InvalidDataException($"{path}: dtype {name} is not supported (F32, BF16, F16, ...)");

    /// <summary>Names, dtypes and shapes without reading tensor data (the header validated as <see cref="ReadHeader(string)"/> does).</summary>
    public static Dictionary<string, (string DType, long[] Shape)> ReadIndex(string path) =>
        ReadHeader(path).Tensors.ToDictionary(kv => kv.Key, kv => (kv.Value.DType, kv.Value.Shape));

    /// <summary>The header's __metadata__ strings (empty when the file has none).</summary>
    public static Dictionary<string, string> ReadMetadata(string path) => ReadHeader(path).Metadata;

    /// <summary>The file's header, validated before anything is allocated for its tensors (see <see cref="SafeTensorsHeader"/>).</summary>
    public static SafeTensorsHeader ReadHeader(string path)
    {
        using var file = ModelFile.OpenRead(path);
        return SafeTensorsHeader.Read(file, path);
    }

    /// <summary>Reads every tensor onto the CPU, in its stored dtype; the header is validated first, from the same open file.</summary>
    public static Dictionary<string, Tensor> Read(string path)
    {
        var result = new Dictionary<string, Tensor>();
        try { ReadEach(path, (name, tensor) => result[name] = tensor.DetachFromDisposeScope(), dispose: false); }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>
    /// Streams a file's tensors one at a time, in header order: each is read into a CPU tensor of its own size and
    /// handed to <paramref name="use"/> (which copies it where it belongs), then disposed before the next is read,
    /// so loading never holds more than the largest tensor beside its destination. <paramref name="staging"/> counts it.
    /// The header is validated first, from the same open file (offsets, sizes, dtypes: <see cref="SafeTensorsHeader"/>).
    /// </summary>
    /// <param name="dispose">false: the caller keeps each tensor (Read)</param>
    public static void ReadEach(string path, Action<string, Tensor> use, StagingCounter? staging = null, bool dispose = true)
    {
        using var file = ModelFile.OpenRead(path);
        var header = SafeTensorsHeader.Read(file, path);
        foreach (var (name, entry) in header.Tensors)
        {
            var tensor = empty(entry.Shape, DTypes[entry.DType]);
            long bytes = entry.Bytes;
            bool handedOver = false;
            staging?.Acquire(bytes);
            try
            {
                file.Position = header.DataStart + entry.Begin;
                tensor.ForEachChunk(chunk => file.ReadExactly(chunk.Span));
                use(name, tensor);
                handedOver = !dispose;
            }
            finally
            {
                if (!handedOver)
                {
                    staging?.Release(bytes);
                    tensor.Dispose();
                }
            }
        }
    }

    /// <summary>Bytes per element of a safetensors dtype name; null for a dtype this reader does not support.</summary>
    public static int? ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" => 8, "F32" or "I32" => 4, "BF16" or "F16" => 2, "U8" or "I8" or "BOOL" => 1, _ => null,
    };

    /// <summary>
    /// Writes tensors sorted by name (so the same weights give the same bytes) and answers the file's sha256, taken from
    /// the bytes as they are written, on a second thread beside the write: naming a checkpoint (its manifest hashes every
    /// file) then need not read gigabytes back (CheckpointStore.PlanFolderAsync takes the hash; docs/benchmarks.md).
    /// </summary>
    public static string Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
            header["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        var ordered = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        long offset = 0;
        foreach (var (name, t) in ordered)
        {
            long size = t.NumberOfElements * t.ElementSize;
            header[name] = new JsonObject
            {
                ["dtype"] = Name(t.dtype),
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + size),
            };
            offset += size;
        }
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8; // keep tensor data 8-byte aligned, as the reference writer does
        var head = new byte[8 + padded];
        BinaryPrimitives.WriteUInt64LittleEndian(head, (ulong)padded);
        json.CopyTo(head, 8);
        head.AsSpan(8 + json.Length).Fill((byte)' ');
        string temp = path + ".partial";
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var file = File.Create(temp))
        {
            file.Write(head);
            sha256.AppendData(head);
            foreach (var (_, t) in ordered)
            {
                using var cpu = t.detach().cpu().contiguous();
                cpu.ForEachChunk(chunk =>
                {
                    var hashing = Task.Run(() => sha256.AppendData(chunk.Span));
                    // The write's own exception (a full disk: callers catch IOException) comes out as it is, not wrapped.
                    try { file.Write(chunk.Span); }
                    finally { hashing.GetAwaiter().GetResult(); }
                });
            }
        }
        File.Move(temp, path, overwrite: true);
        return Convert.ToHexStringLower(sha256.GetHashAndReset());
    }
}

/// <summary>A piece of a tensor's native storage (a plain value, so a lambda may carry it where a Span cannot go).</summary>
internal readonly unsafe struct NativeChunk(byte* start, int length)
{
    public Span<byte> Span => new(start, length);
}

internal static class TensorBytes
{
    /// <summary>At most this many bytes a chunk: a Span cannot reach 2 GiB, and a flat AdamW moment of a 1.5B model is 6 GB.</summary>
    public const int ChunkBytes = 64 << 20;

    /// <summary>
    /// The tensor's storage (CPU, contiguous) in chunks of at most <see cref="ChunkBytes"/>, in order. The chunks point
    /// into the tensor's memory, not a copy: they are valid while the tensor is.
    /// </summary>
    public static unsafe void ForEachChunk(this Tensor t, Action<NativeChunk> action)
    {
        if (t.device_type != TorchSharp.DeviceType.CPU || !t.is_contiguous())
            throw new InvalidOperationException("a tensor's bytes are read from a contiguous CPU tensor only");
        long size = t.NumberOfElements * t.ElementSize;
        if (size == 0) return;
        byte* start;
        // A one-element view's span gives the storage's first byte (the whole tensor's span would overflow past 2 GiB).
        using (var flat = t.flatten())
        using (var first = flat.narrow(0, 0, 1))
            start = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(first.bytes));
        for (long at = 0; at < size; at += ChunkBytes)
            action(new NativeChunk(start + at, (int)Math.Min(ChunkBytes, size - at)));
    }
}

/// <summary>
/// Bytes a loader holds in CPU staging tensors: live now, and the most at once. A streaming load's peak is its
/// largest tensor (tests check it; the memory plan's host part counts it).
/// </summary>
public sealed class StagingCounter
{
    public long LiveBytes { get; private set; }
    public long PeakBytes { get; private set; }
    public long LargestTensorBytes { get; private set; }
    public int Tensors { get; private set; }

    internal void Acquire(long bytes)
    {
        LiveBytes += bytes;
        PeakBytes = Math.Max(PeakBytes, LiveBytes);
        LargestTensorBytes = Math.Max(LargestTensorBytes, bytes);
        Tensors++;
    }

    internal void Release(long bytes) => LiveBytes -= bytes;
}
