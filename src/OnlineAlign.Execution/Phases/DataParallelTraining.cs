using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Training;

namespace OnlineAlign.Execution.Phases;

/// <summary>
/// The train phase across a round's replicas (optimizer.data_parallel): every replica holds the round's policy and the
/// same planned steps; each computes its share of a step's micro-batches (<see cref="DataParallelPlan"/>), replica 0
/// adds all of them in micro-batch order and every replica applies that sum. The result is the checkpoint one replica
/// accumulating the same micro-batches makes, bit for bit. A session's methods run on its model's thread only.
/// </summary>
public static class DataParallelTraining
{
    /// <summary>
    /// How many replicas train a round: 1 (replica 0 alone) unless optimizer.data_parallel allows it (auto: LoRA runs; on:
    /// full fine-tuning too), the round has more than one replica and a step has more than one micro-batch to share.
    /// </summary>
    public static int Replicas(RunSpec spec, int roundReplicas)
    {
        var o = spec.Optimizer;
        bool allowed = o.DataParallel == "on" || (o.DataParallel == "auto" && spec.Model.Lora is not null);
        return allowed ? Math.Max(1, Math.Min(roundReplicas, o.GradientAccumulation)) : 1;
    }

    /// <summary>One replica's part of a data-parallel train phase: a private copy of P_r, its optimiser and its planned steps.</summary>
    public sealed class Session(DecoderLM policy, OptimizerState optimizer, PreferenceSteps steps, RunSpec spec) : IDisposable
    {
        private OptimizerState? _optimizer = optimizer;
        private DecoderLM? _policy = policy;

        public DecoderLM Policy => _policy ?? throw new ObjectDisposedException(nameof(Session), "its trained state was handed over");
        public OptimizerState Optimizer => _optimizer ?? throw new ObjectDisposedException(nameof(Session), "its trained state was handed over");
        public PreferenceSteps Steps { get; } = steps;
        public List<StepMetrics> Done { get; } = [];
        /// <summary>This replica's micro-batch gradients of the step in flight (not the coordinator's: it adds its own at once).</summary>
        public List<float[]> Gradients { get; } = [];

        /// <summary>
        /// After the last step and <see cref="PreferenceSteps.Finish"/> (the moments captured): the trained model (every replica
        /// applied the same updates, so each holds P_{r+1}) and its moments where the run carries them, handed over for
        /// <see cref="ModelCache.Adopt"/>; the session keeps neither.
        /// </summary>
        public TrainedState Keep()
        {
            var kept = RoundJob.Keeping(spec, Policy, ref _optimizer);
            _policy = null;
            return kept;
        }

        public void Dispose()
        {
            Steps.Dispose();
            _optimizer?.Dispose();
            _policy?.Dispose();
            (_optimizer, _policy) = (null, null);
        }
    }

    /// <summary>
    /// Opens a replica's session: null where this round cannot train data-parallel bit-identically (curriculum stages,
    /// LoRA dropout): the coordinator then trains alone, as without data_parallel.
    /// </summary>
    public static Session? Open(RoundJob.Context c, PairsOutcome pairs)
    {
        string policyFolder = c.Folder(c.Request.Policy);
        var policy = c.Models.Owned(policyFolder, c.Request.Policy.Sha256, c.Device, c.Folder(c.Request.Initial));
        if (pairs.Examples.Count == 0 || !RoundPhases.DataParallelizable(policy, pairs))
        {
            policy.Dispose();
            return null;
        }
        policy.GradientCheckpointing = c.Spec.Optimizer.GradientCheckpointing;
        var optimizer = RoundJob.CarriedOptimizer(c);
        var settings = RoundPhases.TrainerSettings(c.Settings, c.Spec.Seed, c.Request.Round, 0);
        return new Session(policy, optimizer,
            new PreferenceSteps(policy, pairs.Examples, settings, Math.Max(0, c.Tokenizer.PadId), RoundJob.CaptureInto(c.Spec, optimizer)), c.Spec);
    }

    /// <summary>
    /// A replica's micro-batches of a step: their sums in micro-batch order; their gradients are added into the step's sum
    /// at once on the coordinator (replica 0), kept for the coordinator to fetch elsewhere.
    /// </summary>
    public static double[][] Backward(Session s, int step, int replica, int replicas)
    {
        var (start, count) = DataParallelPlan.Share(s.Steps.MicroBatches(step), replicas, replica);
        s.Gradients.Clear();
        var sums = new double[count][];
        for (int i = 0; i < count; i++)
        {
            sums[i] = s.Steps.Backward(step, start + i);
            if (replica == 0) s.Steps.AddOwn();
            else s.Gradients.Add(s.Steps.Gradient());
        }
        return sums;
    }

    /// <summary>
    /// After the last step, on replica 0: P_{r+1}'s checkpoint folder, as the single-replica train phase writes it (with its
    /// large files' sha256, as <see cref="RoundJob.TrainKeeping"/> answers them).
    /// </summary>
    public static (TrainOutcome Outcome, IReadOnlyDictionary<string, string> Hashes) Finish(RoundJob.Context c, Session s, string outputFolder)
    {
        s.Steps.Finish();
        var hashes = RoundJob.Save(s.Policy, c.Tokenizer, c.Spec, c.Request.Round, outputFolder, s.Optimizer, c.Folder(c.Request.Initial));
        var trained = RoundPhases.Trained(s.Done);
        TrainingSteps.Write(Path.Combine(outputFolder, TrainingSteps.FileName), trained.Steps);
        return (trained, hashes);
    }
}
