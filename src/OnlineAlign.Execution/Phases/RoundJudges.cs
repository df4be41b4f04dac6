using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Execution.Phases;

/// <summary>
/// A round's judges over the models a judge phase (or one of its shards) loads: this round's judge, the previous round's
/// (CREAM's consistency pass), and the judges the drift probe compares. Owns the models only it loads (M0, a reward model).
/// </summary>
internal sealed class RoundJudges : IDisposable
{
    private readonly DecoderLM? _beforeWarmStart;
    private readonly RewardModel? _reward;
    private readonly Func<int, IJudge> _at;

    public IJudge Current { get; }
    public IJudge? Previous { get; }
    public DecoderLM Initial { get; }

    public RoundJudges(RoundJob.Context c, ITextTokenizer tokenizer, IVerifiableTask? task)
    {
        var r = c.Request;
        // CREAM's first round: the warm-started policy M1 was trained from M0, so round 1 already compares M1's
        // implicit reward (log pi_M1 - log pi_M0) with M0's length-normalised log-likelihood ranking; self_consistent's
        // implicit reward in round 1 (and an llm judge's with judge.implicit_agreement) is the same log pi_M1 - log pi_M0.
        // Round 2: the previous judge is M1 judging as it did in round 1, so M0 is needed again. A model folder without model.base_folder has no M0: the policy's
        // likelihood stands in for the implicit reward. The likelihood judge's round 1 under CREAM compares M1's
        // likelihood with M0's (without an M0 that round has no previous judge); an LLM judge's round 1 has none, as M0
        // was never taught to judge.
        // The judge-drift probe's round-0 judge is round 1's, which needs M0 in every round.
        // M0 as the prepare phase stored it with the run (the same weights on every silo, pretrained once); a run prepared
        // before M0 was stored builds or finds it in this silo's cache.
        _beforeWarmStart = !RoundJob.JudgesWithBeforeWarmStart(c.Spec, r) ? null
            : r.BeforeWarmStart is { } stored ? HfCheckpoint.Load(c.Folder(stored), c.Device)
            : RoundJob.BeforeWarmStart(c.Spec, c.Device, c.Models.PretrainedCache);
        try
        {
            var trainedFrom = r.TrainedFrom is null ? _beforeWarmStart : c.Shared(r.TrainedFrom);
            var trainedFromBefore = r.TrainedFromBefore is not null ? c.Shared(r.TrainedFromBefore) : r.TrainedFrom is null ? null : _beforeWarmStart;
            Initial = c.Shared(r.Initial);
            _reward = c.Spec.Judge.Kind == "reward_model" ? RewardModel.Load(c.Spec.Judge.RewardModelFolder!, c.Device) : null;
            if (_reward is not null)
                VocabularyCheck.Require(tokenizer, _reward.backbone.Config, "the policy's tokenizer",
                    Path.Combine(c.Spec.Judge.RewardModelFolder!, "config.json"));
            var initial = Initial;
            _at = round => JudgeFactory.Create(c.Settings, c.Shared(r.Policy),
                JudgeFactory.ImplicitReference(c.Spec.Reference, trainedFrom, initial, r.Policy.Sha256 == r.Initial.Sha256),
                tokenizer, task, _reward, c.Spec.Seed, round, initial);
            Current = _at(r.Round);
            // M0 was trained from nothing: its judgement is its length-normalised log-likelihood.
            Previous = JudgeFactory.Previous(c.Settings, trainedFrom, r.TrainedFrom is null ? null
                : JudgeFactory.ImplicitReference(c.Spec.Reference, trainedFromBefore, initial, r.TrainedFrom.Sha256 == r.Initial.Sha256),
                tokenizer, task, c.Spec.Seed, r.Round);
            Round0 = () => JudgeFactory.Create(c.Settings, initial,
                JudgeFactory.ImplicitReference(c.Spec.Reference, _beforeWarmStart, initial, policyIsInitial: true),
                tokenizer, task, _reward, c.Spec.Seed, 1, initial);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The round's judge as its policy judges, built with a given round's seed (the drift probe's).</summary>
    public IJudge At(int round) => _at(round);

    /// <summary>The round-0 judge: the initial policy judging, with round 1's seed.</summary>
    public Func<IJudge> Round0 { get; }

    public void Dispose()
    {
        _reward?.Dispose();
        _beforeWarmStart?.Dispose();
    }
}
