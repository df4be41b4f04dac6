using OnlineAlign.Specs;
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
    /// <param name="Measure">"model,mode": measure that one configuration in this process and print its peak (the driver starts one process per configuration)</param>
    public sealed record Settings(string[] Models, string Device, ScalarType DType, int Pairs, int PromptTokens, int ResponseTokens, int Rank, string[] PlanShapes,
        string? Measure = null, string[]? Arguments = null);

    private static readonly LoraSpec Adapter = new() { Rank = 16, Alpha = 32, TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj"] };

    public static void Run(Settings s, TextWriter report)
    {
        var device = DeviceSetting.Resolve(s.Device);
        bool cpu = device.type == TorchSharp.DeviceType.CPU;
        int dtypeBytes = s.DType == ScalarType.Float32 ? 4 : 2;
        var lora = Adapter with { Rank = s.Rank };
        report.WriteLine($"DPO training steps: {s.Pairs} pairs a step ({2 * s.Pairs} sequences of {s.PromptTokens} prompt + {s.ResponseTokens} response tokens), {s.DType}, {device}");
        report.WriteLine($"{"model",-12} {"mode",-12} {"measured",10} {"estimate",10} {"ratio",6}  estimate's parts");
        var modes = new[] { ((LoraSpec?)null, false), (null, true), (lora, false), (lora, true) };
        string Mode(LoraSpec? adapter, bool checkpointing) => (adapter is null ? "full" : $"LoRA r{adapter.Rank}") + (checkpointing ? "+ckpt" : "");
        if (s.Measure is { } one)
        {
            var (model, mode) = (one.Split(',')[0], one.Split(',')[1]);
            var (adapter, checkpointing) = modes.Single(m => Mode(m.Item1, m.Item2) == mode);
            Console.WriteLine($"peak-bytes {MeasureSteps(ModelShapes.ByName(model), device, s.DType, adapter, checkpointing, s, cpu)}");
            return;
        }
        foreach (var name in s.Models)
            foreach (var (adapter, checkpointing) in modes)
            {
                var config = ModelShapes.ByName(name);
                // Each configuration in a fresh process: memory an earlier one freed would otherwise be reused uncounted.
                long measured = MeasureInChild(s, name, Mode(adapter, checkpointing));
                var plan = MemoryPlan.Estimate(new MemoryPlan.Inputs(config, dtypeBytes, adapter, HeldModels: 0, TrainSequences: 2 * s.Pairs,
                    TrainTokens: s.PromptTokens + s.ResponseTokens, TrainResponseTokens: s.ResponseTokens, GenerationRows: 0, GenerationTokens: 0,
                    GradientCheckpointing: checkpointing));
                // The peak with no other model held: a full model's trained copy, or a LoRA model's base and adapter.
                report.WriteLine($"{name,-12} {Mode(adapter, checkpointing),-12} {MemoryPlan.Gib(measured),10} {MemoryPlan.Gib(plan.Peak),10} " +
                                 $"{plan.Peak / (double)measured,6:F2}  weights {MemoryPlan.Gib(plan.HeldModels + plan.TrainedCopy)}, gradients {MemoryPlan.Gib(plan.Gradients)}, " +
                                 $"AdamW {MemoryPlan.Gib(plan.OptimizerState)}, master {MemoryPlan.Gib(plan.MasterWeights)}, activations {MemoryPlan.Gib(plan.Activations)}");
            }

        report.WriteLine();
        report.WriteLine("Plans (bf16 weights, 8 pairs a step, 512 + 512 tokens, 64 sequences decoded together, 3 held models: policy, previous, initial):");
        report.WriteLine($"{"shape",-12} {"mode",-15} {"peak",10} {"held",10} {"step",10} {"generation",10}  80 GB  141 GB");
        foreach (var name in s.PlanShapes)
            foreach (var (adapter, checkpointing) in modes)
            {
                var plan = MemoryPlan.Estimate(new MemoryPlan.Inputs(ModelShapes.ByName(name), 2, adapter, HeldModels: 3, TrainSequences: 16,
                    TrainTokens: 1024, TrainResponseTokens: 512, GenerationRows: 64, GenerationTokens: 1024, GradientCheckpointing: checkpointing));
                string Fits(long gb) => plan.Peak <= gb * 1_000_000_000L ? "fits" : "no";
                report.WriteLine($"{name,-12} {Mode(adapter, checkpointing),-15} {MemoryPlan.Gib(plan.Peak),10} {MemoryPlan.Gib(plan.HeldModels),10} " +
                                 $"{MemoryPlan.Gib(plan.TrainingStep),10} {MemoryPlan.Gib(plan.Generation),10}  {Fits(80),-5}  {Fits(141)}");
            }
    }

    private static long MeasureInChild(Settings s, string model, string mode)
    {
        var start = new System.Diagnostics.ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet") start.ArgumentList.Add(typeof(MemoryBenchmark).Assembly.Location);
        var arguments = s.Arguments ?? [];
        for (int i = 0; i < arguments.Length; i++)
            if (arguments[i] == "--out") i++; // the driver alone writes the report
            else start.ArgumentList.Add(arguments[i]);
        start.ArgumentList.Add("--measure");
        start.ArgumentList.Add($"{model},{mode}");
        using var child = System.Diagnostics.Process.Start(start)!;
        string output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("peak-bytes "))
            ?? throw new InvalidOperationException($"the measurement of {model} {mode} printed no peak (exit {child.ExitCode}): {output}");
        return long.Parse(line["peak-bytes ".Length..].Trim());
    }

    /// <summary>Peak memory of two training steps over the memory before the model existed (CPU: VmHWM; GPU: nvidia-smi's memory.used, polled).</summary>
    private static long MeasureSteps(ModelConfig config, Device device, ScalarType dtype, LoraSpec? lora, bool checkpointing, Settings s, bool cpu)
    {
        // The runtime's one-time allocations (kernel libraries' buffers, thread pools) come with the first steps of any
        // model: take them on a tiny one first, so the peak counts only what this configuration holds.
        TrainSteps(BuiltinModels.Tiny, device, dtype, lora, checkpointing, s with { Pairs = 2 });
        GC.Collect();
        GC.WaitForPendingFinalizers();
        // Memory an earlier measurement freed stays in the C heap and would be reused without counting: give it back.
        if (cpu) malloc_trim(0);
        long before = cpu ? Status("VmRSS") : GpuUsed();
        if (cpu) File.WriteAllText("/proc/self/clear_refs", "5"); // the peak starts over from now
        long gpuPeak = before;
        using var polling = new CancellationTokenSource();
        var poller = cpu ? Task.CompletedTask : Task.Run(async () =>
        {
            while (!polling.IsCancellationRequested) { gpuPeak = Math.Max(gpuPeak, GpuUsed()); await Task.Delay(50); }
        });
        TrainSteps(config, device, dtype, lora, checkpointing, s);
        polling.Cancel();
        poller.Wait();
        return (cpu ? Status("VmHWM") : gpuPeak) - before;
    }

    private static void TrainSteps(ModelConfig config, Device device, ScalarType dtype, LoraSpec? lora, bool checkpointing, Settings s)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1);
        using var model = new DecoderLM(config).InitializeLikeTransformers(generator).Place(device, dtype);
        if (lora is not null) model.AddAdapters(lora, generator);
        model.GradientCheckpointing = checkpointing;
        var random = new Random(0);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => random.Next(3, config.VocabSize)).ToArray();
        var pairs = Enumerable.Range(0, 2 * s.Pairs)
            .Select(_ => new PairExample(Tokens(s.PromptTokens), Tokens(s.ResponseTokens), Tokens(s.ResponseTokens), -50, -50)).ToList();
        PreferenceTrainer.Train(model, pairs, new PreferenceTrainer.Settings(new OnlineAlign.Specs.LossSpec { Kind = "dpo" },
            new OptimizerSettings { LearningRate = 1e-5 }, Epochs: 1, BatchSize: s.Pairs, Seed: 1));
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern int malloc_trim(nuint pad);

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
