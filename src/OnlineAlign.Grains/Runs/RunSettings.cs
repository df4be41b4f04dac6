namespace OnlineAlign.Grains.Runs;

/// <summary>
/// Per-silo settings of the run orchestrator: whether the next round's generation starts while a round's trained checkpoint
/// still uploads (Silo:OverlapNextGeneration; it needs the upload behind the evaluation, Silo:OverlapCheckpointUpload).
/// </summary>
public sealed record RunSettings(bool OverlapNextGeneration = true);
