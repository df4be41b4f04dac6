using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Specs;

namespace OnlineAlign.Alignment.Judges;

/// <summary>Builds the round's judge, and the previous round's judge that CREAM compares it with.</summary>
public static class JudgeFactory
{
    /// <param name="policy">The model that judges (self-rewarding judges use the policy at the round's start).</param>
    /// <param name="trainedFrom">What <paramref name="policy"/> was trained from (the implicit reward's reference).</param>
    public static IJudge Create(RoundSettings s, DecoderLM policy, DecoderLM? trainedFrom, ITextTokenizer tokenizer,
        IVerifiableTask? task, RewardModel? reward, ulong seed, int round, DecoderLM? initial = null) => s.Judge.Kind switch
    {
        "verifier" => new VerifierJudge(task ?? throw new ArgumentException("judge.kind 'verifier' needs a task with answers")),
        "implicit" => new ImplicitRewardJudge(policy, trainedFrom, Math.Max(0, tokenizer.PadId)),
        "majority" => new MajorityJudge(),
        // The policy's own confidence: length-normalised log-likelihood, the implicit judge's first-round score, every round.
        "likelihood" => new ImplicitRewardJudge(policy, null, Math.Max(0, tokenizer.PadId)),
        "reward_model" => new RewardModelJudge(reward ?? throw new ArgumentException("judge.kind 'reward_model' needs judge.reward_model_folder"),
            Math.Max(0, tokenizer.PadId)),
        "llm" when s.Judge.ImplicitAgreement =>   // the implicit reward measured beside the LLM judge, its pairs not filtered
            new AgreementJudge(Llm(s, LlmJudgeModel(s, policy, initial), tokenizer, seed, round),
                new ImplicitRewardJudge(policy, trainedFrom, Math.Max(0, tokenizer.PadId)), "llm"),
        "llm" => Llm(s, LlmJudgeModel(s, policy, initial), tokenizer, seed, round),
        // Both of the policy's internal reward models: the LLM judge's scores, kept where the implicit reward agrees.
        "self_consistent" =>
            new AgreementJudge(Llm(s, LlmJudgeModel(s, policy, initial), tokenizer, seed, round),
                new ImplicitRewardJudge(policy, trainedFrom, Math.Max(0, tokenizer.PadId))),
        // Its answers come over HTTP, asked by the worker (it has the network, the key and the cache); scores reach the round as a ScoredJudge.
        "remote" => throw new ArgumentException(
            "judge.kind 'remote' is asked over HTTP by the cluster's worker; a run in one process (InProcessRun) cannot use it"),
        _ => throw new ArgumentException($"judge.kind '{s.Judge.Kind}' is not one of {string.Join(", ", JudgeSpec.Kinds)}"),
    };

    /// <param name="initial">the warm-started model, for judge.model "initial"</param>
    private static DecoderLM LlmJudgeModel(RoundSettings s, DecoderLM policy, DecoderLM? initial) =>
        s.Judge.Model == "initial" ? initial ?? throw new ArgumentException("judge.model 'initial' needs the initial model") : policy;

    private static LlmJudge Llm(RoundSettings s, DecoderLM policy, ITextTokenizer tokenizer, ulong seed, int round) =>
        new(policy, tokenizer, s.Judge.Judgements,
            new SamplingOptions { Temperature = 0.7, TopP = 0.95, MaxNewTokens = s.Judge.MaxNewTokens, Seed = seed + (ulong)round }, s.Judge.Template,
            s.Judge.Template == "compact" ? LlmJudgeScoring.Expected : LlmJudgeScoring.Sampled, s.Sampling.BatchSize);

    /// <summary>
    /// What an implicit reward of a policy is measured against: the reference the run trains with. With
    /// reference "initial" that is the initial policy (log pi - log pi_initial), except for the initial policy
    /// itself (the first round), whose reward against itself would be 0 for every response; there, and with
    /// "previous_round", it is the model the policy was trained from (null: length-normalised log-likelihood).
    /// </summary>
    public static DecoderLM? ImplicitReference(string referenceStrategy, DecoderLM? trainedFrom, DecoderLM initial, bool policyIsInitial) =>
        referenceStrategy == "initial" && !policyIsInitial ? initial : trainedFrom;

    /// <summary>
    /// The previous round's self-judge (P_{r-1}, referenced to P_{r-2}), or null where consistency does not
    /// apply: the first round, consistency off, or a fixed judge (verifier, reward model, majority vote) that ranks the same way every round.
    /// </summary>
    public static IJudge? Previous(RoundSettings s, DecoderLM? trainedFrom, DecoderLM? trainedFromBefore, ITextTokenizer tokenizer,
        IVerifiableTask? task, ulong seed, int round) =>
        trainedFrom is null || s.Consistency == "none" || s.Judge.Kind is "verifier" or "reward_model" or "majority" or "remote"
            || (s.Judge.Kind == "llm" && s.Judge.Model == "initial")   // a frozen judge ranks the same way every round
            ? null : Create(s, trainedFrom, trainedFromBefore, tokenizer, task, null, seed, round);
}
