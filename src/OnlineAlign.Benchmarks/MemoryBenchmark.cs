using OnlineAlign.Alignment.Losses;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Modeling.Training;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// The memory plan against measured peaks: DPO training steps of full and LoRA models on this device (CPU: the peak
/// resident memory, VmHWM, over the memory before the model existed), then the plan for larger shapes on 80 and
/// 141 GB GPUs.
/// </summary>
public static class MemoryBenchmark
{
    public sealed record Settings(string[] Models, string Device, ScalarType DType, int Pairs, int PromptTokens, int ResponseTokens, int Rank, string[] PlanShapes);

    private static readonly LoraSettings Adapter = new() { Rank = 16, Alpha = 32, TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj"] };

    public static void Run(Settings s, TextWriter report)
    {
        var device = DeviceSetting.Resolve(s.Device);
        bool cpu = device.type == TorchSharp.DeviceType.CPU;
        int dtypeBytes = s.DType == ScalarType.Float32 ? 4 : 2;
        var lora = Adapter with { Rank = s.Rank };
        report.WriteLine($"DPO training steps: {s.Pairs} pairs a step ({2 * s.Pairs} sequences of {s.PromptTokens} prompt + {s.ResponseTokens} response tokens), {s.DType}, {device}");
        report.WriteLine($"{"model",-12} {"mode",-12} {"measured",10} {"estimate",10} {"ratio",6}  estimate's parts");
        foreach (var name in s.Models)
            foreach (var adapter in new[] { (LoraSettings?)null, lora })
            {
                var config = ModelShapes.ByName(name);
                long measured = MeasureSteps(config, device, s.DType, adapter, s, cpu);
                var plan = MemoryPlan.Estimate(new MemoryPlan.Inputs(config, dtypeBytes, adapter, HeldModels: 0, TrainSequences: 2 * s.Pairs,
                    TrainTokens: s.PromptTokens + s.ResponseTokens, TrainResponseTokens: s.ResponseTokens, GenerationRows: 0, GenerationTokens: 0));
                // The peak with no other model held: a full model's trained copy, or a LoRA model's base and adapter.
                report.WriteLine($"{name,-12} {(adapter is null ? "full" : $"LoRA r{adapter.Rank}"),-12} {MemoryPlan.Gib(measured),10} {MemoryPlan.Gib(plan.Peak),10} " +
                                 $"{plan.Peak / (double)measured,6:F2}  weights {MemoryPlan.Gib(plan.HeldModels + plan.TrainedCopy)}, gradients {MemoryPlan.Gib(plan.Gradients)}, " +
                                 $"AdamW {MemoryPlan.Gib(plan.OptimizerState)}, master {MemoryPlan.Gib(plan.MasterWeights)}, activations {MemoryPlan.Gib(plan.Activations)}");
            }

        report.WriteLine();
        report.WriteLine("Plans (bf16 weights, 8 pairs a step, 512 + 512 tokens, 64 sequences decoded together, 3 held models: policy, previous, initial):");
        report.WriteLine($"{"shape",-12} {"mode",-10} {"peak",10} {"held",10} {"step",10} {"generation",10}  80 GB  141 GB");
        foreach (var name in s.PlanShapes)
            foreach (var adapter in new[] { (LoraSettings?)null, lora })
            {
                var plan = MemoryPlan.Estimate(new MemoryPlan.Inputs(ModelShapes.ByName(name), 2, adapter, HeldModels: 3, TrainSequences: 16,
                    TrainTokens: 1024, TrainResponseTokens: 512, GenerationRows: 64, GenerationTokens: 1024));
                string Fits(long gb) => plan.Peak <= gb * 1_000_000_000L ? "fits" : "no";
                report.WriteLine($"{name,-12} {(adapter is null ? "full" : $"LoRA r{adapter.Rank}"),-10} {MemoryPlan.Gib(plan.Peak),10} {MemoryPlan.Gib(plan.HeldModels),10} " +
                                 $"{MemoryPlan.Gib(plan.TrainingStep),10} {MemoryPlan.Gib(plan.Generation),10}  {Fits(80),-5}  {Fits(141)}");
            }
    }

    /// <summary>Peak memory of two training steps over the memory before the model existed (CPU: VmHWM; GPU: nvidia-smi's memory.used, polled).</summary>
    private static long MeasureSteps(ModelConfig config, Device device, ScalarType dtype, LoraSettings? lora, Settings s, bool cpu)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = cpu ? Status("VmRSS") : GpuUsed();
        if (cpu) File.WriteAllText("/proc/self/clear_refs", "5"); // the peak starts over from now
        long gpuPeak = before;
        using var polling = new CancellationTokenSource();
        var poller = cpu ? Task.CompletedTask : Task.Run(async () =>
        {
            while (!polling.IsCancellationRequested) { gpuPeak = Math.Max(gpuPeak, GpuUsed()); await Task.Delay(50); }
        });
        using (var scope = NewDisposeScope())
        using (var generator = new Generator(1))
        {
            using var model = new DecoderLM(config).InitializeLikeTransformers(generator).Place(device, dtype);
            if (lora is not null) model.AddAdapters(lora, generator);
            var random = new Random(0);
            int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => random.Next(3, config.VocabSize)).ToArray();
            var pairs = Enumerable.Range(0, 2 * s.Pairs)
                .Select(_ => new PairExample(Tokens(s.PromptTokens), Tokens(s.ResponseTokens), Tokens(s.ResponseTokens), -50, -50)).ToList();
            PreferenceTrainer.Train(model, pairs, new PreferenceTrainer.Settings(new LossSettings { Kind = "dpo" },
                new OptimizerSettings { LearningRate = 1e-5 }, Epochs: 1, BatchSize: s.Pairs, Seed: 1));
        }
        polling.Cancel();
        poller.Wait();
        return (cpu ? Status("VmHWM") : gpuPeak) - before;
    }

    private static long Status(string field) =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":"))[(field.Length + 1)..].Trim().Split(' ')[0]) * 1024;

    private static long GpuUsed()
    {
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("nvidia-smi", "--query-gpu=memory.used --format=csv,noheader,nounits -i 0")
            { RedirectStandardOutput = true, UseShellExecute = false })!;
        string text = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return long.Parse(text.Trim()) << 20;
    }
}
