using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Specs;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Alignment;

/// <summary>
/// Data-parallel training in process: replicas with the same model each compute their share of every step's micro-batches,
/// the coordinator adds the shares in micro-batch order and every replica applies the sum. The weights, the optimiser's
/// moments and the step metrics must equal one replica's accumulating the same micro-batches, bit for bit.
/// </summary>
public class DataParallelTrainingTests
{
    private static readonly ByteTokenizer Tokenizer = new();

    /// <summary>Pairs of different lengths (so micro-batches pad differently) with made-up reference log-probs.</summary>
    private static List<PairExample> Pairs() => new SortDigitsTask().Prompts(20, 3, "train").Select((p, i) => new PairExample(
        Examples.PromptIds(Tokenizer, p.Prompt), Examples.ResponseIds(Tokenizer, p.Answer!),
        Examples.ResponseIds(Tokenizer, new string(p.Answer!.Reverse().ToArray()) + new string('9', i % 3)), -3.0 - 0.1 * i, -2.5 - 0.05 * i)).ToList();

    private static readonly PreferenceTrainer.Settings Settings = new(new LossSpec { Kind = "dpo", Beta = 0.1 },
        new OptimizerSettings { LearningRate = 1e-3, WeightDecay = 0.01, GradientAccumulation = 5 }, Epochs: 2, BatchSize: 2, Seed: 11);

    private static DecoderLM Model(bool lora)
    {
        var model = BuiltinModels.Create(BuiltinModels.Tiny, 7);
        if (!lora) return model;
        using var generator = new Generator(3);
        model.AddAdapters(new LoraSpec { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj"] }, generator);
        using var noGrad = no_grad();
        foreach (var (_, layer) in model.Adapted()) layer.AdapterB.normal_(0, 0.05, generator);   // B = 0 would leave A's gradient 0
        return model;
    }

    [Theory]
    [InlineData(false, 3)]
    [InlineData(true, 2)]
    [InlineData(true, 4)]
    public void ReplicasSummingTheirMicroBatchesInOrderEqualOneReplicaBitForBit(bool lora, int replicas)
    {
        var pairs = Pairs();
        using var single = Model(lora);
        var before = single.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using var singleState = new OptimizerState();
        var expected = PreferenceTrainer.Train(single, pairs, Settings, optimizerState: singleState);
        Assert.Equal(4, expected.Count);   // 20 pairs x 2 epochs / 2 a micro-batch / 5 a step

        var models = Enumerable.Range(0, replicas).Select(_ => Model(lora)).ToList();
        var states = models.Select(_ => new OptimizerState()).ToList();
        var steps = models.Select((m, k) => new PreferenceSteps(m, pairs, Settings, optimizerState: states[k])).ToList();
        var metrics = new List<StepMetrics>();
        for (int step = 0; step < steps[0].Count; step++)
        {
            var sums = new double[PreferenceSteps.SumCount];
            var remote = new List<float[]>();
            for (int k = 0; k < replicas; k++)
            {
                var (start, count) = DataParallelPlan.Share(steps[k].MicroBatches(step), replicas, k);
                for (int i = start; i < start + count; i++)
                {
                    PreferenceTrainer.Add(sums, steps[k].Backward(step, i));
                    if (k == 0) steps[0].AddOwn();
                    else remote.Add(steps[k].Gradient());   // what travels through the cluster: float32 values
                }
            }
            foreach (var gradient in remote) steps[0].Add(gradient);
            var sum = steps[0].Sum();
            metrics.Add(steps[0].Apply(step, sums));
            for (int k = 1; k < replicas; k++)
            {
                steps[k].SetSum(sum);
                steps[k].Apply(step, sums);
            }
        }
        foreach (var s in steps) s.Finish();

        Assert.Equal(expected, metrics);
        var want = single.state_dict();
        Assert.Contains(want, kv => !kv.Value.equal(before[kv.Key]).all().item<bool>());   // the steps did change the weights
        foreach (var model in models)
            foreach (var (name, t) in model.state_dict()) Assert.True(t.equal(want[name]).all().item<bool>(), $"{name} differs ({(lora ? "LoRA" : "full")}, {replicas} replicas)");
        foreach (var state in states)
            foreach (var (name, t) in singleState.Moments) Assert.True(t.equal(state.Moments[name]).all().item<bool>(), $"optimizer {name} differs");
        foreach (var s in steps) s.Dispose();
        foreach (var state in states) state.Dispose();
        foreach (var model in models) model.Dispose();
    }

    [Fact]
    public void TheOrderTheMicroBatchGradientsAreAddedInChangesTheSumSoTheOrderIsFixed()
    {
        using var model = Model(lora: false);
        using var steps = new PreferenceSteps(model, Pairs(), Settings);
        var gradients = new List<float[]>();
        for (int micro = 0; micro < steps.MicroBatches(0); micro++)
        {
            steps.Backward(0, micro);
            steps.AddOwn();
            gradients.Add(steps.Gradient());
        }
        var accumulated = steps.Sum();   // one replica's sum
        steps.SetSum(new float[steps.GradientLength]);
        foreach (var g in gradients) steps.Add(g);
        Assert.Equal(accumulated, steps.Sum());   // sent as float32 and added in micro-batch order: the same bits
        steps.SetSum(new float[steps.GradientLength]);
        foreach (var g in Enumerable.Reverse(gradients)) steps.Add(g);
        Assert.NotEqual(accumulated, steps.Sum());   // float addition is not associative: another order gives another sum
    }

    [Fact]
    public void AStepsMicroBatchesAreSharedOutContiguouslyInOrder()
    {
        foreach (int micro in new[] { 1, 2, 5, 8 })
            foreach (int replicas in new[] { 1, 2, 3, 4 })
            {
                var shares = Enumerable.Range(0, replicas).Select(k => DataParallelPlan.Share(micro, replicas, k)).ToList();
                Assert.Equal(Enumerable.Range(0, micro), shares.SelectMany(s => Enumerable.Range(s.Start, s.Count)));
                Assert.True(shares.Max(s => s.Count) - shares.Min(s => s.Count) <= 1);
            }
        Assert.Equal([(0L, 1 << 20), (1L << 20, 5)], DataParallelPlan.Chunks((1 << 20) + 5).ToList());
    }

    [Fact]
    public void DataParallelTrainingIsOnForLoraRunsWithMicroBatchesToShareAndOptInForFullWeights()
    {
        var full = new RunSpec { Optimizer = new OptimizerSpec { GradientAccumulation = 4 } };
        var lora = full with { Model = full.Model with { Lora = new LoraSpec() } };
        Assert.Equal(3, DataParallelTraining.Replicas(lora, 3));
        Assert.Equal(4, DataParallelTraining.Replicas(lora, 8));   // no more replicas than micro-batches in a step
        Assert.Equal(1, DataParallelTraining.Replicas(lora with { Optimizer = new OptimizerSpec() }, 3));   // one micro-batch: nothing to share
        Assert.Equal(1, DataParallelTraining.Replicas(full, 3));
        Assert.Equal(3, DataParallelTraining.Replicas(full with { Optimizer = full.Optimizer with { DataParallel = "on" } }, 3));
        Assert.Equal(1, DataParallelTraining.Replicas(lora with { Optimizer = lora.Optimizer with { DataParallel = "off" } }, 3));
        Assert.Contains(new OptimizerSpec { DataParallel = "always" }.Problems(SpecLimits.Default), p => p.Contains("optimizer.data_parallel", StringComparison.Ordinal));
        Assert.Contains(new OptimizerSpec { GradientAccumulation = 0 }.Problems(SpecLimits.Default), p => p.Contains("gradient_accumulation", StringComparison.Ordinal));
    }
}
