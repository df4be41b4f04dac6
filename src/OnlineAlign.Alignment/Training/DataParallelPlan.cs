namespace OnlineAlign.Alignment.Training;

/// <summary>
/// How a step's micro-batches are shared out in data-parallel training: contiguous ranges in micro-batch order, replica 0
/// first, so that adding the replicas' gradients replica after replica adds them in micro-batch order (what one replica
/// accumulating the step does). The cut falls on micro-batch boundaries only: every micro-batch is the one the single
/// replica runs, with the same rows and padding. Gradients travel in chunks under the cluster's message-size limit.
/// </summary>
public static class DataParallelPlan
{
    /// <summary>Float32 values per message: 1 Mi values, 4 MiB, well under Orleans' default 100 MB message body.</summary>
    public const int ChunkValues = 1 << 20;

    /// <summary>Replica <paramref name="replica"/>'s micro-batches of a step of <paramref name="microBatches"/>: (first, count), count may be 0.</summary>
    public static (int Start, int Count) Share(int microBatches, int replicas, int replica)
    {
        if (replicas < 1 || replica < 0 || replica >= replicas) throw new ArgumentOutOfRangeException(nameof(replica), $"replica {replica} of {replicas}");
        int per = microBatches / replicas, extra = microBatches % replicas;
        return (replica * per + Math.Min(replica, extra), per + (replica < extra ? 1 : 0));
    }

    /// <summary>Values as the bytes that travel (a byte[] crosses Orleans' serializer as one block; a float[] value by value).</summary>
    public static byte[] Bytes(ReadOnlySpan<float> values) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).ToArray();

    /// <summary>Travelled bytes back into values, at <paramref name="offset"/> of <paramref name="into"/>.</summary>
    public static void CopyValues(byte[] bytes, float[] into, long offset)
    {
        if (bytes.Length % sizeof(float) != 0 || offset < 0 || offset + bytes.Length / sizeof(float) > into.LongLength)
            throw new ArgumentException($"{bytes.Length} bytes do not fit at value {offset} of {into.LongLength}");
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).CopyTo(into.AsSpan((int)offset));
    }

    /// <summary>The chunks (offset, count) a flat gradient of <paramref name="length"/> values travels in.</summary>
    public static IEnumerable<(long Offset, int Count)> Chunks(long length, int chunk = ChunkValues)
    {
        for (long offset = 0; offset < length; offset += chunk) yield return (offset, (int)Math.Min(chunk, length - offset));
    }
}
