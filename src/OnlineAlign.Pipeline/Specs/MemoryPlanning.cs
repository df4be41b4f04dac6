using OnlineAlign.Contracts;
using OnlineAlign.Modeling;

namespace OnlineAlign.Pipeline.Specs;

/// <summary>The memory plan of a run spec on a device, and the refusal of one that cannot fit.</summary>
public static class MemoryPlanning
{
    /// <summary>The device a spec is checked against: its name and memory (set by Silo:DeviceMemoryBytes, or measured).</summary>
    public sealed record DeviceBudget(string Name, long Bytes, bool Cpu);

    /// <param name="deviceBytes">the device's memory: sampling.batch_size 0 plans the generation batch from it</param>
    public static MemoryPlan Plan(RunSpec s, ModelConfig config, int maxPromptTokens, bool cpu, long? deviceBytes = null)
    {
        int dtypeBytes = config.TorchDtype switch
        {
            "bfloat16" => 2,
            "float16" => cpu ? 4 : 2, // CPUs load float16 checkpoints as float32
            _ => 4,
        };
        // The read-only models a round holds at once: the policy, the initial model, the previous round's policy
        // (reference previous_round, or the judge's implicit reward), and the one before it for consistency.
        int held = 2 + (s.Reference == "previous_round" || s.Judge is "implicit" or "self_consistent" ? 1 : 0) + (s.Consistency != "none" ? 1 : 0);
        int tokens = maxPromptTokens + s.MaxNewTokens;
        int rows = s.GenerationBatchSize > 0 ? s.GenerationBatchSize
            : MemoryPlan.GenerationRows(config, dtypeBytes, tokens, (deviceBytes ?? 8L << 30) / 4, SpecLimits.Default.GenerationBatchSize);
        return MemoryPlan.Estimate(new MemoryPlan.Inputs(config, dtypeBytes, RunSpecMapping.Lora(s), Math.Min(held, 4),
            TrainSequences: s.BatchSize * (s.SelmAlpha > 0 ? 3 : 2), TrainTokens: tokens, TrainResponseTokens: s.MaxNewTokens,
            GenerationRows: rows, GenerationTokens: tokens, GradientCheckpointing: s.GradientCheckpointing));
    }

    /// <summary>A problem naming the plan's parts when its peak exceeds the device's memory; null when it fits.</summary>
    public static string? Problem(MemoryPlan plan, DeviceBudget device, bool lora) =>
        plan.Peak <= device.Bytes ? null
        : $"model: the run does not fit {device.Name}: memory plan {plan.Describe(device.Name, device.Bytes)}. " +
          (lora ? "Turn on optimizer.gradient_checkpointing, lower optimizer.batch_size, sampling.batch_size or sampling.max_new_tokens, or use a larger device"
                : "Train LoRA adapters (model.lora), turn on optimizer.gradient_checkpointing, or lower optimizer.batch_size or sampling.batch_size, or use a larger device");
}
