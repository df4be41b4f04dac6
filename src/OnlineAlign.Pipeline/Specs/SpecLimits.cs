namespace OnlineAlign.Pipeline.Specs;

/// <summary>
/// The largest values a run spec may ask for. Every count a request carries has one, so that no single
/// request can make a silo allocate without bound; products that decide memory are checked in 64-bit.
/// </summary>
public sealed record SpecLimits
{
    public int Rounds { get; init; } = 10_000;
    public int PromptsPerRound { get; init; } = 100_000;
    /// <summary>rounds x prompts_per_round: the run's fixed prompt order is built in full.</summary>
    public long TotalPrompts { get; init; } = 2_000_000;
    public int SamplesPerPrompt { get; init; } = 64;
    public int MaxNewTokens { get; init; } = 32_768;
    /// <summary>prompts_per_round x samples_per_prompt x max_new_tokens: tokens a round may generate.</summary>
    public long TokensPerRound { get; init; } = 1L << 31;
    public int GenerationBatchSize { get; init; } = 4_096;
    public int Judgements { get; init; } = 16;
    public int SftSteps { get; init; } = 1_000_000;
    public int EftExamples { get; init; } = 100_000;
    /// <summary>judge.template when it is a custom text.</summary>
    public int JudgeTemplateLength { get; init; } = 16_384;
    public int Epochs { get; init; } = 100;
    public int TrainingBatchSize { get; init; } = 4_096;
    public int WarmupSteps { get; init; } = 1_000_000;
    public int GenerationReplicas { get; init; } = 64;
    public int EvalPrompts { get; init; } = 100_000;
    public int MaxPhaseAttempts { get; init; } = 100;
    public int TopK { get; init; } = 1_000_000;
    public int NameLength { get; init; } = 128;
    public int PathLength { get; init; } = 4_096;

    public static readonly SpecLimits Default = new();
}
