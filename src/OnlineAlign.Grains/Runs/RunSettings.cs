namespace OnlineAlign.Grains.Runs;

/// <summary>
/// Per-silo settings of the run orchestrator: whether the next round's generation starts while a round's trained checkpoint
/// still uploads (Silo:OverlapNextGeneration; it needs the upload behind the evaluation, Silo:OverlapCheckpointUpload), and
/// whether the other replicas copy that checkpoint from the trainer for their evaluation shards instead of waiting for the
/// upload and reading it from storage (Silo:CopyTrainedCheckpoint).
/// </summary>
public sealed record RunSettings(bool OverlapNextGeneration = true, bool CopyTrainedCheckpoint = true);
