using Orleans.Concurrency;

namespace OnlineAlign.Contracts;

/// <summary>
/// Holds a run's models on a GPU-tagged silo (key: run id) and runs their tensor work on one dedicated
/// thread. Inputs and outputs are blob references, never tensors or batches (Orleans messages are capped
/// and an oversized one does not fail fast). Every phase is idempotent: a request whose output already
/// exists returns that output instead of computing it again, so a retried or duplicated call costs nothing.
/// </summary>
[Alias("onlinealign.IPolicyWorkerGrain")]
public interface IPolicyWorkerGrain : IGrainWithStringKey
{
    /// <summary>The run stopped: let the models go (the activation ends once the phase in flight has returned).</summary>
    [Alias("Retire")] Task Retire();

    /// <summary>
    /// The ledger placed this replica elsewhere: the activation moves to the silo the call's placement names (its models
    /// go, and load again there from that silo's checkpoint cache), once the phase in flight has returned.
    /// </summary>
    [Alias("MoveToPlacedSilo")] Task MoveToPlacedSilo();

    /// <summary>The silo this activation lives on (parsable address): a replica the GPU ledger moved elsewhere is moved there.</summary>
    [Alias("Silo"), AlwaysInterleave] Task<string> Silo();

    /// <summary>Builds the initial policy (built-in model + warm-start SFT, or a Hugging Face folder) and checkpoints it as round 0.</summary>
    [Alias("Prepare"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> Prepare(string runId, RunSpec spec, int epoch, CancellationToken cancellationToken = default);

    /// <summary>
    /// Whether this activation holds <paramref name="checkpoint"/>'s model in memory as the trained copy it kept from a
    /// data-parallel train phase, before that checkpoint's upload (on replica 0) was seen durable: a phase may then run from
    /// it here at once, instead of reading the checkpoint from storage once whole.
    /// </summary>
    [Alias("Keeps"), AlwaysInterleave] Task<bool> Keeps(BlobRef checkpoint);

    /// <summary>Samples one shard of a round's responses from the round's policy and writes them to a blob.</summary>
    [Alias("Generate"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> Generate(GenerationRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Scores the responses (and, for CREAM, the previous round's judge's scores and the consistency C); where the judging
    /// was sharded (request.Shards), merges the shards' scores instead, every prompt exactly once, and computes the metrics.
    /// </summary>
    [Alias("Judge"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> Judge(PhaseRequest request, CancellationToken cancellationToken = default);

    /// <summary>Scores one shard (request.Shard of request.ShardCount) of a round's prompts
    /// with this round's and the previous round's judges and writes the raw scores to a blob.</summary>
    [Alias("JudgeShard"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> JudgeShard(PhaseRequest request, CancellationToken cancellationToken = default);

    /// <summary>Builds preference pairs with the reference model's log-probs (merged from request.Shards where the phase was sharded).</summary>
    [Alias("BuildPairs"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> BuildPairs(PhaseRequest request, CancellationToken cancellationToken = default);

    /// <summary>Computes the reference log-probs of one shard (request.Shard of request.ShardCount) of the round's pairs into a blob.</summary>
    [Alias("PairsShard"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> PairsShard(PhaseRequest request, CancellationToken cancellationToken = default);

    /// <summary>Trains the policy on the pairs and checkpoints it (weights, optimiser state, run state).</summary>
    [Alias("Train"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> Train(PhaseRequest request, CancellationToken cancellationToken = default);

    /// <summary>Evaluates the trained policy on held-out prompts (accuracy, lengths, KL); from request.Shards' results where sharded.</summary>
    [Alias("Evaluate"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> Evaluate(PhaseRequest request, CancellationToken cancellationToken = default);

    /// <summary>Evaluates one shard (request.Shard of request.ShardCount) of the held-out prompts: per-prompt results into a blob.</summary>
    [Alias("EvaluateShard"), ResponseTimeout("01:00:00")]
    Task<PhaseOutput> EvaluateShard(PhaseRequest request, CancellationToken cancellationToken = default);

    /// <summary>Data-parallel training: this replica's share of a step's micro-batches (their gradients kept here for <see cref="GradientChunk"/>).</summary>
    [Alias("TrainGradients"), ResponseTimeout("01:00:00")]
    Task<TrainStepGradients> TrainGradients(TrainStepCall call, CancellationToken cancellationToken = default);

    /// <summary>A chunk of micro-batch <paramref name="micro"/>'s gradient (the replica's i-th of the step in flight): float32 values as bytes.</summary>
    [Alias("GradientChunk"), ResponseTimeout("00:10:00")]
    Task<byte[]> GradientChunk(string session, int micro, long offset, int count);

    /// <summary>
    /// A chunk of the step's summed gradient from replica 0 (float32 values as bytes, from value <paramref name="offset"/>); with the last chunk (offset + length = the gradient's length) this
    /// replica applies it, as replica 0 did, with the step's sums (<paramref name="sums"/>).
    /// </summary>
    [Alias("ApplyGradient"), ResponseTimeout("01:00:00")]
    Task ApplyGradient(string session, int step, long offset, byte[] chunk, double[] sums);

    /// <summary>
    /// The data-parallel train phase ended (or failed): this replica keeps its trained copy in memory as checkpoint
    /// <paramref name="keepAs"/> (the hash of the checkpoint replica 0 wrote from the same updates), or lets it go (null).
    /// </summary>
    [Alias("EndTraining")]
    Task EndTraining(string session, string? keepAs);

    /// <summary>
    /// Waits until a checkpoint this worker's train phase returned is durable (its upload goes on behind the phases after
    /// training) and returns the upload's metrics; null where it never will be: the worker that made it stopped before its
    /// manifest was written, so the train phase must be done again. A failed upload throws, as a failed phase does.
    /// Interleaves with the phase in flight (the round's evaluation on this worker).
    /// </summary>
    [Alias("CheckpointDurable"), AlwaysInterleave, ResponseTimeout("01:00:00")]
    Task<Dictionary<string, double>?> CheckpointDurable(BlobRef checkpoint, CancellationToken cancellationToken = default);

    [Alias("Progress"), AlwaysInterleave]
    Task<PhaseProgress?> Progress();

    /// <summary>
    /// The manifest of a checkpoint one of this worker's last two train phases returned (null: none such here, or its upload
    /// failed): another replica copies the checkpoint from here (<see cref="ReceiveCheckpoint"/>) instead of waiting for
    /// its upload. Interleaves with the phase in flight (it reads nothing but the planned manifest).
    /// </summary>
    [Alias("OfferedManifest"), AlwaysInterleave]
    Task<byte[]?> OfferedManifest(BlobRef checkpoint);

    /// <summary>
    /// Up to <paramref name="count"/> bytes (at most 4 MiB) of file <paramref name="file"/> of a checkpoint this worker offers
    /// (<see cref="OfferedManifest"/>), from <paramref name="offset"/>. Interleaves with the phase in flight (it reads the
    /// checkpoint's local files).
    /// </summary>
    [Alias("OfferedPiece"), AlwaysInterleave, ResponseTimeout("00:10:00")]
    Task<byte[]> OfferedPiece(BlobRef checkpoint, string file, long offset, int count);

    /// <summary>
    /// Copies a checkpoint <paramref name="holder"/> (replica 0, which trained it) offers into this silo's checkpoint cache,
    /// every file verified against the manifest whose hash names it, so a phase here reads it without waiting for its
    /// upload. Returns the copy's metrics, or null where the holder does not offer it (read it from storage once durable).
    /// </summary>
    [Alias("ReceiveCheckpoint"), ResponseTimeout("01:00:00")]
    Task<Dictionary<string, double>?> ReceiveCheckpoint(BlobRef checkpoint, IPolicyWorkerGrain holder, CancellationToken cancellationToken = default);
}
