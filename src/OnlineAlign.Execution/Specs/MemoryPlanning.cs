using OnlineAlign.Contracts;
using OnlineAlign.Specs;
using OnlineAlign.Modeling;

namespace OnlineAlign.Execution.Specs;

/// <summary>The memory plan of a run spec on a device, and the refusal of one that cannot fit.</summary>
public static class MemoryPlanning
{
    /// <summary>
    /// The device a spec is checked against: its name and memory (set by Silo:DeviceMemoryBytes, or measured), the silo's
    /// host memory (Silo:HostMemoryBytes, or measured; 0: not checked), and what other runs on the silo have reserved.
    /// </summary>
    public sealed record DeviceBudget(string Name, long Bytes, bool Cpu, long HostBytes = 0)
    {
        /// <summary>The other runs' reservations on this silo (MemoryLedger); none: the spec is checked alone.</summary>
        public MemoryLedger.Reservation Reserved { get; init; } = new(0, 0);
    }

    private static int DTypeBytes(ModelConfig config, bool cpu) => config.TorchDtype switch
    {
        "bfloat16" => 2,
        "float16" => cpu ? 4 : 2, // CPUs load float16 checkpoints as float32
        _ => 4,
    };

    /// <summary>Bytes per weight of a loaded model (the plan's dtype size, read from the tensors instead of the config).</summary>
    public static int DTypeBytes(TorchSharp.torch.ScalarType dtype) => dtype == TorchSharp.torch.ScalarType.Float32 ? 4 : 2;

    /// <summary>The device memory assumed where it cannot be measured (and no Silo:DeviceMemoryBytes says).</summary>
    private const long UnmeasuredDeviceBytes = 8L << 30;

    /// <summary>
    /// Sequences decoded together: sampling.batch_size, or where it is 0 as many rows as a quarter of the device's
    /// memory holds (their KV caches of <paramref name="tokensPerRow"/> positions and their logits), so a GPU decodes
    /// hundreds of rows a step. Outputs do not depend on it (a row's tokens are the same in any batch).
    /// </summary>
    public static int GenerationRows(RunSpec s, ModelConfig config, int dtypeBytes, int tokensPerRow, long? deviceBytes) =>
        s.Sampling.BatchSize > 0 ? s.Sampling.BatchSize
            : MemoryPlan.GenerationRows(config, dtypeBytes, tokensPerRow, (deviceBytes ?? UnmeasuredDeviceBytes) / 4, SpecLimits.Default.GenerationBatchSize);

    /// <summary>What the spec's worker holds in host memory while it loads, trains and saves.</summary>
    public static HostMemoryPlan HostPlan(RunSpec s, ModelConfig config, bool cpu)
    {
        var lora = RunSpecMapping.Lora(s);
        return HostMemoryPlan.Estimate(config, DTypeBytes(config, cpu), cpu,
            lora is null ? config.ParameterCount() : MemoryPlan.AdapterParameters(config, lora), lora is not null, s.Optimizer.CarryState);
    }

    /// <param name="deviceBytes">the device's memory: sampling.batch_size 0 plans the generation batch from it</param>
    public static MemoryPlan Plan(RunSpec s, ModelConfig config, int maxPromptTokens, bool cpu, long? deviceBytes = null)
    {
        int dtypeBytes = DTypeBytes(config, cpu);
        // The read-only models a round holds at once: the policy, the initial model, the previous round's policy
        // (reference previous_round, or the judge's implicit reward), and the one before it for consistency.
        int held = 2 + (s.Reference == "previous_round" || s.Judge.ScoresImplicitReward() ? 1 : 0) + (s.Consistency != "none" ? 1 : 0);
        int tokens = maxPromptTokens + s.Sampling.MaxNewTokens;
        int rows = GenerationRows(s, config, dtypeBytes, tokens, deviceBytes);
        return MemoryPlan.Estimate(new MemoryPlan.Inputs(config, dtypeBytes, RunSpecMapping.Lora(s), Math.Min(held, 4),
            TrainSequences: s.Optimizer.BatchSize * (s.Loss.SelmAlpha > 0 ? 3 : 2), TrainTokens: tokens, TrainResponseTokens: s.Sampling.MaxNewTokens,
            GenerationRows: rows, GenerationTokens: tokens, GradientCheckpointing: s.Optimizer.GradientCheckpointing));
    }

    /// <summary>
    /// A problem naming the budget exceeded and the plan's parts: the device's memory, the silo's host memory, or either
    /// beside the reservations of the runs already on the silo; null when the run fits.
    /// </summary>
    public static string? Problem(MemoryPlan plan, HostMemoryPlan host, DeviceBudget device, bool lora) =>
        Problem(plan, device, lora)
        ?? (device.HostBytes > 0 && host.Peak > device.HostBytes
            ? $"model: the run does not fit this silo's host memory: {host.Describe("the host", device.HostBytes)} (host memory budget, " +
                $"Silo:HostMemoryBytes). " +
              (lora ? "Use a silo with more host memory" : "Train LoRA adapters (model.lora: fewer AdamW moments to keep), or use a silo with more host memory")
            : null)
        ?? MemoryLedger.Refusal(new MemoryLedger.Reservation(plan.Peak, host.Peak), device.Reserved, device);

    /// <summary>A problem naming the plan's parts when its peak exceeds the device's memory; null when it fits.</summary>
    public static string? Problem(MemoryPlan plan, DeviceBudget device, bool lora) =>
        plan.Peak <= device.Bytes ? null
        : $"model: the run does not fit {device.Name}: memory plan {plan.Describe(device.Name, device.Bytes)}. " +
          (lora ? "Turn on optimizer.gradient_checkpointing, lower optimizer.batch_size, sampling.batch_size or sampling.max_new_tokens, or use a larger device"
                : "Train LoRA adapters (model.lora), turn on optimizer.gradient_checkpointing, or lower optimizer.batch_size or " +
                    "sampling.batch_size, or use a larger device");
}
