namespace OnlineAlign.Modeling;

/// <summary>
/// What a run's worker holds in host memory beside the device plan, while it loads, trains and saves (counted from the
/// code that does it): a model is built on its device in its dtype before its weights stream in (HfCheckpoint.Load),
/// one tensor at a time through a staging tensor, and so is an in-memory copy (ModelCopy), but a LoRA model's copy over a
/// shared base is first built in float32 on the host (LoraAdapters.SharingBaseOf); where the run carries AdamW's moments into the
/// next round, they are copied to the host after training and written with the checkpoint (OptimizerState); saving copies one
/// tensor at a time to the host
/// (SafeTensors.Write). Phase outputs are streamed to and from storage, so they add no whole-output buffer.
/// On a CPU device the models themselves are in host memory too: the device plan counts them.
/// </summary>
public sealed record HostMemoryPlan(long Construction, long Staging, long OptimizerMoments)
{
    /// <summary>Loading (construction, then one staging tensor) and saving (moments, then one staging tensor) come one after the other.</summary>
    public long Peak => Math.Max(Construction, OptimizerMoments) + Staging;

    /// <param name="cpu">the device is the CPU: the model is built where it stays (the device plan counts it)</param>
    /// <param name="trainable">parameters AdamW trains (all, or the LoRA adapters')</param>
    /// <param name="lora">the run trains LoRA adapters (its adapted copies are built on the host first)</param>
    /// <param name="carried">the run carries AdamW's moments into the next round (optimizer.carry_state): they are kept on the host</param>
    public static HostMemoryPlan Estimate(ModelConfig c, int dtypeBytes, bool cpu, long trainable, bool lora, bool carried) => new(
        Construction: cpu || !lora ? 0 : c.ParameterCount() * 4L,
        Staging: LargestTensorElements(c) * Math.Max(4, dtypeBytes),
        OptimizerMoments: carried ? trainable * 8L : 0);

    /// <summary>The largest weight of the model: the embedding (or LM head), or an MLP or attention projection.</summary>
    public static long LargestTensorElements(ModelConfig c)
    {
        long h = c.HiddenSize;
        return new[]
        {
            (long)c.VocabSize * h, (long)c.IntermediateSize * h, (long)c.NumHeads * c.HeadDim * h,
        }.Max();
    }

    public string Describe(string host, long? hostBytes = null) =>
        $"host peak {MemoryPlan.Gib(Peak)} on {host}{(hostBytes is long b ? $" of {MemoryPlan.Gib(b)}" : "")}: float32 construction of a LoRA copy " +
            $"before it shares its base {MemoryPlan.Gib(Construction)}, " +
        $"one tensor's staging {MemoryPlan.Gib(Staging)}, AdamW moments kept for the checkpoint {MemoryPlan.Gib(OptimizerMoments)}";
}
