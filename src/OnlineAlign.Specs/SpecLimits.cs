namespace OnlineAlign.Specs;

/// <summary>
/// The largest values a run spec may ask for, and what a silo will read from disk for it. Every count a
/// request carries has one, so that no single request can make a silo allocate without bound; products that
/// decide memory are checked in 64-bit. A silo reads them from the "Limits" section of its role file
/// (silos/*.json, overridable like any setting: Limits__Rounds=100); the defaults are here.
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
    /// <summary>Any other text field (task, judge and loss names, device...).</summary>
    public int TextLength { get; init; } = 256;
    public int PathLength { get; init; } = 4_096;
    /// <summary>Runs running or waiting for a GPU at once on the cluster; a start or resume beyond it is refused.</summary>
    public int RunsInProgress { get; init; } = 16;
    /// <summary>The largest real-valued coefficient (beta, alphas, temperature, gaps): beyond it a value is a typo.</summary>
    public double Coefficient { get; init; } = 1_000;
    /// <summary>optimizer.learning_rate: above it a run only diverges (a test that wants divergence raises it).</summary>
    public double LearningRate { get; init; } = 1;
    /// <summary>A prompt set (prompts.jsonl_path) is read only up to this size.</summary>
    public long PromptFileBytes { get; init; } = 1L << 30;
    /// <summary>One line of a prompt set.</summary>
    public int PromptLineCharacters { get; init; } = 1 << 20;
    /// <summary>A model folder's JSON files (config, tokenizer, generation config).</summary>
    public long ModelJsonBytes { get; init; } = 256L << 20;

    /// <summary>
    /// The only hosts a remote judge (judge.endpoint) may name, comma-separated (Limits__RemoteJudgeAllowedHosts=vllm.internal,10.0.0.5);
    /// unset: any host but link-local and cloud metadata addresses (<see cref="RemoteEndpoints"/>).
    /// </summary>
    public string? RemoteJudgeAllowedHosts { get; init; }

    /// <summary>
    /// The only proxy a remote judge's requests may go through (Limits__RemoteJudgeProxy=http://proxy.internal:3128); unset: none.
    /// The environment's HTTP_PROXY/HTTPS_PROXY are never used for the judge: through a proxy the connection-time address check
    /// sees only the proxy. With this set, the judge's host is checked before each request (set the allow-list too).
    /// </summary>
    public string? RemoteJudgeProxy { get; init; }

    public static readonly SpecLimits Default = new();
}
