using OnlineAlign.Specs;
using OnlineAlign.Alignment.Consistency;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Pairs;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Losses;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Modeling.Training;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Execution.InProcess;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Tests.Infrastructure;

using static OnlineAlign.Tests.Alignment.JudgeTestData;

namespace OnlineAlign.Tests.Alignment;

/// <summary>The methods as their papers define them, each pinned by a case that the earlier code got wrong.</summary>
public class FidelityTests
{


    [Fact]
    public void ScoresAreReadOnlyWhereTheNumberEndsInTheRubricsRange()
    {
        Assert.Null(LlmJudge.ParseScore("Score: 10"));
        Assert.Equal(4.0, LlmJudge.ParseScore("Good. Score: 4"));
        Assert.Equal(3.5, LlmJudge.ParseScore("Score: 3.5."));
        Assert.Equal(2.0, LlmJudge.ParseScore("Score: 5\nOn reflection, Score: 2"));
        Assert.Null(LlmJudge.ParseScore("Score: 5.25.3"));
        Assert.Null(LlmJudge.ParseScore("no score at all"));
    }

    [Fact]
    public void AJudgeThatCannotScoreSomeOrAllResponsesNeverBreaksARoundAndThoseResponsesAreInNoPair()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 3);
        var groups = Groups(3, 3);
        double nan = double.NaN;
        var current = new FixedJudge([nan, 1, 2], [nan, nan, nan], [3, nan, 1]);
        var previous = new FixedJudge([2, nan, 1], [1, 2, 3], [nan, nan, nan]);
        var settings = new RoundSettings { SamplesPerPrompt = 3, Consistency = "dyn" };
        var judged = RoundPhases.Judge(groups, current, previous, settings, new SortDigitsTask(), Tokenizer.EosId);
        Assert.Equal(5, judged.Metrics["judge/parse_failures"]);
        Assert.All(judged.Consistency, c => Assert.True(double.IsFinite(c)));

        var pairs = RoundPhases.BuildPairs(groups, judged.Scores, judged.Consistency, settings, model, 1, 0).Pairs;
        Assert.Equal([(0, 2, 1), (2, 0, 2)], pairs.Select(p => (p.PromptIndex, p.Chosen, p.Rejected)));

        // A real LLM judge whose model emits garbage (random weights): every response unscored, no pair, no error.
        var garbage = new LlmJudge(model, Tokenizer, 2, new() { MaxNewTokens = 8, Temperature = 1, Seed = 1 }, "{prompt}{response} Score:");
        var unscored = RoundPhases.Judge(groups, garbage, garbage, settings, new SortDigitsTask(), Tokenizer.EosId);
        Assert.Empty(RoundPhases.BuildPairs(groups, unscored.Scores, unscored.Consistency, settings, model, 1, 0).Pairs);
    }

    [Fact]
    public void AvgConsistencyIsTheMeanOverThePromptsThatYieldAPair()
    {
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 3);
        var groups = Groups(3, 2);
        double[][] scores = [[1, 1], [2, 1], [1, 2]]; // prompt 0 gives no pair
        double[] perPrompt = [0.0, 1.0, 0.5];
        var pairs = RoundPhases.BuildPairs(groups, scores, perPrompt, new RoundSettings { SamplesPerPrompt = 2, Consistency = "avg" }, model, 1, 0).Examples;
        Assert.Equal([0.75, 0.75], pairs.Select(p => p.Consistency));
        var dyn = RoundPhases.BuildPairs(groups, scores, perPrompt, new RoundSettings { SamplesPerPrompt = 2, Consistency = "dyn" }, model, 1, 0).Examples;
        Assert.Equal([1.0, 0.5], dyn.Select(p => p.Consistency));
    }

    [Fact]
    public void CurriculumTrainsStageAfterStageEachWithTheModelThePreviousStageEndedWithAsReference()
    {
        int[] prompt = Examples.PromptIds(Tokenizer, "sort 312=");
        int[] Response(string text) => Examples.ResponseIds(Tokenizer, text);
        using var model = BuiltinModels.Create(BuiltinModels.Tiny, 4);
        var reference = ResponseLogProbs.Score(model, [new(prompt, Response("123")), new(prompt, Response("321")), new(prompt, Response("132"))]);
        var stage0 = Enumerable.Repeat(new PairExample(prompt, Response("123"), Response("321"), reference[0].Sum, reference[1].Sum, Stage: 0), 4).ToList();
        var stage1 = Enumerable.Repeat(new PairExample(prompt, Response("123"), Response("132"), reference[0].Sum, reference[2].Sum, Stage: 1), 4).ToList();
        var settings = new RoundSettings { Loss = new LossSpec { Kind = "dpo" }, Optimizer = new OptimizerSpec { LearningRate = 1e-3, WeightDecay = 0, BatchSize = 2 } };
        using var staged = BuiltinModels.Clone(model);
        RoundPhases.Train(staged, new PairsOutcome([.. stage1, .. stage0], []), settings, seed: 1, round: 1, padTokenId: 0);

        // By hand: stage 0 against the round's reference, then stage 1 against the model stage 0 ended with.
        using var byHand = BuiltinModels.Clone(model);
        PreferenceTrainer.Train(byHand, stage0, new PreferenceTrainer.Settings(settings.Loss, RoundPhases.Optimizer(settings.Optimizer), 1, 2, 2));
        var after0 = ResponseLogProbs.Score(byHand, [new(prompt, Response("123")), new(prompt, Response("132"))], sharePrompts: false);
        PreferenceTrainer.Train(byHand, stage1.Select(p => p with { ReferenceChosen = after0[0].Sum, ReferenceRejected = after0[1].Sum }).ToList(),
            new PreferenceTrainer.Settings(settings.Loss, RoundPhases.Optimizer(settings.Optimizer), 1, 2, 2 + 7919));
        var expected = byHand.state_dict();
        foreach (var (name, t) in staged.state_dict()) Assert.True(t.allclose(expected[name], 0, 0), name);
    }

    [Fact]
    public void SppoWithTheInitialModelAsReferenceIsRefused() =>
        Assert.Contains(RunSpecMapping.Problems(new RunSpec { Reference = "initial" , Loss = new() { Kind = "sppo" } }), p => p.Contains("does not fit loss.kind 'sppo'"));

    [Theory]
    [InlineData("sort")]
    [InlineData("add")]
    [InlineData("reverse")]
    public void HeldOutPromptsAreDisjointFromEveryPromptTheRunTrainsOn(string task)
    {
        var spec = new RunSpec { Prompts = new() { Task = task, EvalPrompts = 100 }, Rounds = 4, PromptsPerRound = 256, Seed = 3 };
        var trained = RunSpecMapping.TrainingPrompts(spec).Prompts.Select(p => p.Prompt)
            .Concat(WarmStart.DemonstrationPrompts(BuiltinTasks.ByName(task), RunSpecMapping.WarmStartSettings(spec), (int)spec.Seed).Select(p => p.Prompt))
            .ToHashSet();
        var heldOut = RunSpecMapping.EvalPrompts(spec);
        Assert.Equal(100, heldOut.Count);
        Assert.DoesNotContain(heldOut, p => trained.Contains(p.Prompt));
    }

    [Fact]
    public void TheImplicitJudgeMeasuresAgainstTheReferenceTheRunTrainsWith()
    {
        using var policy = BuiltinModels.Create(BuiltinModels.Tiny, 1);
        using var trainedFrom = BuiltinModels.Create(BuiltinModels.Tiny, 2);
        using var initial = BuiltinModels.Create(BuiltinModels.Tiny, 3);
        Assert.Same(initial, JudgeFactory.ImplicitReference("initial", trainedFrom, initial, policyIsInitial: false));
        Assert.Same(trainedFrom, JudgeFactory.ImplicitReference("initial", trainedFrom, initial, policyIsInitial: true));
        Assert.Same(trainedFrom, JudgeFactory.ImplicitReference("previous_round", trainedFrom, initial, policyIsInitial: false));

        var groups = Groups(2, 2);
        var judge = JudgeFactory.Create(new RoundSettings { Judge = new() { Kind = "implicit", Template = "compact" } }, policy, JudgeFactory.ImplicitReference("initial", trainedFrom, initial, false), Tokenizer, null, null, 1, 2);
        var scores = judge.Score(groups).Scores;
        var rows = groups.SelectMany(g => g.ResponseIds.Select(r => new PromptResponse(g.PromptIds, r))).ToList();
        var expected = ResponseLogProbs.Score(policy, rows).Zip(ResponseLogProbs.Score(initial, rows), (a, b) => a.Sum - b.Sum).ToArray();
        Assert.Equal(expected, scores.SelectMany(s => s), (a, b) => Math.Abs(a - b) < 1e-5);
    }

    /// <summary>
    /// CREAM's round 1 as in the paper: the warm-started M1 judges by its implicit reward against M0 (the model
    /// before the warm start), and that ranking is compared with M0's own, so consistency applies from round 1
    /// (before, round 1 had no previous judge and C was 1).
    /// </summary>
    [Fact]
    public void CreamsFirstRoundComparesTheWarmStartedModelWithTheModelBeforeIt()
    {
        var spec = new RunSpec
        {
            Prompts = new() { Task = "sort", EvalPrompts = 8 }, SftSteps = 30, EftExamples = 0, Rounds = 1, PromptsPerRound = 16, SamplesPerPrompt = 4, Consistency = "dyn", Seed = 3, Device = "cpu", Judge = new() { Kind = "implicit" }, Loss = new() { Kind = "cream" },
            Model = new() { PretrainSteps = 20 },
        };
        using var run = new InProcessRun(spec, RepositoryPaths.NewTempFolder("cream-m0"), pretrainedCache: RepositoryPaths.PretrainedCache);
        run.Prepare();
        var round = run.RunRound().Metrics;
        Assert.True(double.IsFinite(round["consistency/tau"]), "round 1 had no previous judge");
        Assert.InRange(round["consistency/C"], 0, 0.999);
        // M0 is the pretrained model (model.pretrain_steps), rebuilt exactly from the seed; with no pretraining, the initialisation.
        using var m0 = RoundJob.BeforeWarmStart(spec, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache)!;
        using var again = RoundJob.BeforeWarmStart(spec, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache)!;
        using var fresh = BuiltinModels.Create(BuiltinModels.Tiny, 3);
        Assert.True(m0.state_dict()["model.embed_tokens.weight"].allclose(again.state_dict()["model.embed_tokens.weight"], 0, 0));
        Assert.False(m0.state_dict()["model.embed_tokens.weight"].allclose(fresh.state_dict()["model.embed_tokens.weight"], 0, 0));
        using var random = RoundJob.BeforeWarmStart(spec with { Model = spec.Model with { PretrainSteps = 0 } }, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache)!;
        Assert.True(random.state_dict()["model.embed_tokens.weight"].allclose(fresh.state_dict()["model.embed_tokens.weight"], 0, 0));
        Assert.Null(RoundJob.BeforeWarmStart(spec with { SftSteps = 0 }, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache));
    }

    /// <summary>
    /// CREAM's round-1 consistency as the paper defines it, computed here without the judge or consistency code: for each
    /// prompt, tau = Kendall's tau-b between M1's implicit reward (log pi_M1 - log pi_M0, summed over the response) and
    /// M0's length-normalised log-likelihood, and C = (tau + 1) / 2.
    /// </summary>
    [Fact]
    public void CreamsRoundOneConsistencyIsTauOfM0AndM1PlusOneOverTwo()
    {
        var spec = RoundOneSpec(new() { Kind = "implicit" }, prompts: 6, samples: 5) with { Consistency = "dyn", Loss = new() { Kind = "cream" } };
        using var one = RoundOne.Start(spec, "cream-c", ["0123", "32", "1032547698", "9", "5555"]);

        using var m0 = RoundJob.BeforeWarmStart(spec, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache)!;
        AssertRoundOneConsistency(one, m0, (underM1, underM0) =>
            (ImplicitReward((underM1, underM0)),       // M1's implicit reward, log pi_M1 - log pi_M0
             underM0.Select(Mean).ToArray()));        // M0's length-normalised log-likelihood
    }

    /// <summary>
    /// CREAM with the likelihood judge in round 1: the previous judge is M0's length-normalised log-likelihood (M1 was
    /// trained from M0), so C per prompt is (Kendall's tau-b between M1's and M0's length-normalised log-likelihoods + 1) / 2,
    /// computed here without the judge or consistency code. (Before, round 1 had no previous judge here and C was 1.)
    /// </summary>
    [Fact]
    public void CreamsRoundOneWithTheLikelihoodJudgeComparesM1sLikelihoodWithM0s()
    {
        var spec = RoundOneSpec(new() { Kind = "likelihood" }, prompts: 6, samples: 5) with { Consistency = "dyn", Loss = new() { Kind = "cream" } };
        using var one = RoundOne.Start(spec, "cream-likelihood", ["0123", "32", "1032547698", "9", "5555"]);

        using var m0 = RoundJob.BeforeWarmStart(spec, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache)!;
        AssertRoundOneConsistency(one, m0, (underM1, underM0) => (underM1.Select(Mean).ToArray(), underM0.Select(Mean).ToArray()));
        // Without consistency the phase does not load M0 for this judge.
        Assert.False(RoundJob.JudgesWithBeforeWarmStart(spec with { Consistency = "none" }, one.Context.Request));
        Assert.True(RoundJob.JudgesWithBeforeWarmStart(spec, one.Context.Request));
    }

    /// <summary>
    /// self_consistent's first round (Self-Consistency of Internal Reward Models): the LLM judge's scores travel with the
    /// policy's implicit DPO reward, log pi_M1 - log pi_M0 summed over the response (M0: the model before the warm start),
    /// not with M1's length-normalised likelihood, which is no reward the policy was trained towards.
    /// </summary>
    [Fact]
    public void SelfConsistentsFirstRoundAgreementIsTheImplicitRewardAgainstM0()
    {
        var spec = RoundOneSpec(new() { Kind = "self_consistent", Judgements = 1 }, prompts: 4, samples: 4);
        using var one = RoundOne.Start(spec, "scir-m0", ["0123", "32", "1032547698", "9"]);
        var judged = one.Judged;
        using var m0 = RoundJob.BeforeWarmStart(spec, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache)!;
        var scored = ScoredByM1AndM0(one, m0);
        var expected = scored.Select(ImplicitReward).ToArray();
        var likelihood = scored.Select(p => p.UnderM1.Select(Mean).ToArray()).ToArray();
        Assert.NotNull(judged.Agreement);
        for (int i = 0; i < expected.Length; i++)
            Assert.Equal(expected[i], judged.Agreement[i], (a, b) => Math.Abs(a - b) < 1e-3);
        // The two readings rank these responses differently somewhere: the case tells them apart.
        Assert.Contains(Enumerable.Range(0, expected.Length), i => TauB(expected[i], likelihood[i]) < 0.99);
    }

    /// <summary>
    /// judge.implicit_agreement on the plain LLM judge: it reads self_consistent's implicit reward (log pi_M1 - log pi_M0 in
    /// round 1, recomputed here from the two models) and records health/implicit_agreement, while its scores stay the LLM
    /// judge's own (the same as without the measurement; which pairs it keeps: ExperimentControlTests).
    /// </summary>
    [Fact]
    public void AnLlmJudgeMeasuringImplicitAgreementReadsM1AgainstM0BesideItsOwnScores()
    {
        var spec = RoundOneSpec(new() { Kind = "llm", Judgements = 1, ImplicitAgreement = true }, prompts: 4, samples: 4);
        string[] texts = ["0123", "32", "1032547698", "9"];
        using var one = RoundOne.Start(spec, "llm-ia", texts);
        using var m0 = RoundJob.BeforeWarmStart(spec, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache)!;
        var expected = ScoredByM1AndM0(one, m0).Select(ImplicitReward).ToArray();
        Assert.NotNull(one.Judged.Agreement);
        for (int i = 0; i < expected.Length; i++)
            Assert.Equal(expected[i], one.Judged.Agreement[i], (a, b) => Math.Abs(a - b) < 1e-3);
        Assert.True(double.IsFinite(one.Judged.Metrics[OnlineAlign.Alignment.Health.HealthSignals.ImplicitAgreement]));

        using var plain = RoundOne.Start(spec with { Judge = spec.Judge with { ImplicitAgreement = false } }, "llm-plain", texts);
        Assert.Null(plain.Judged.Agreement);
        Assert.DoesNotContain(OnlineAlign.Alignment.Health.HealthSignals.ImplicitAgreement, plain.Judged.Metrics.Keys);
        Assert.Equal(plain.Judged.Scores, one.Judged.Scores);
    }

    /// <summary>The small built-in run the round-1 tests warm-start (seed 3, 30 SFT steps, no EFT), with the judge under test.</summary>
    private static RunSpec RoundOneSpec(JudgeSpec judge, int prompts, int samples) => new()
    {
        Prompts = new() { Task = "sort", EvalPrompts = 4 }, SftSteps = 30, EftExamples = 0, Rounds = 1, PromptsPerRound = prompts,
        SamplesPerPrompt = samples, Consistency = "none", Seed = 3, Device = "cpu", Judge = judge,
    };

    /// <summary>Each round-1 prompt's responses scored token by token under M1 (the warm-started policy) and under M0.</summary>
    private static List<(IReadOnlyList<ResponseScore> UnderM1, IReadOnlyList<ResponseScore> UnderM0)> ScoredByM1AndM0(RoundOne one, DecoderLM m0)
    {
        var m1 = one.Context.Shared(one.M1);
        return one.Prompts.Select((p, i) =>
        {
            var rows = one.Responses[i].Select(r => new PromptResponse(Examples.PromptIds(one.Context.Tokenizer, p.Prompt), r)).ToList();
            return (ResponseLogProbs.Score(m1, rows), ResponseLogProbs.Score(m0, rows));
        }).ToList();
    }

    /// <summary>A prompt's responses' implicit reward in round 1, log pi_M1(y|x) - log pi_M0(y|x), summed over each response.</summary>
    private static double[] ImplicitReward((IReadOnlyList<ResponseScore> UnderM1, IReadOnlyList<ResponseScore> UnderM0) scored) =>
        scored.UnderM1.Zip(scored.UnderM0, (a, b) => Sum(a) - Sum(b)).ToArray();

    /// <summary>
    /// Round 1 of a run whose round 0 (M1) was just warm-started in process: the round's judge run over the same fixed
    /// responses for every prompt, so a test can recompute what the judge should have read from M1 and M0.
    /// </summary>
    private sealed class RoundOne : IDisposable
    {
        private readonly InProcessRun _run;
        private readonly ModelCache _models = new(RepositoryPaths.PretrainedCache);
        public RoundJob.Context Context { get; }
        public BlobRef M1 { get; }
        public List<PromptItem> Prompts { get; }
        public List<IReadOnlyList<int[]>> Responses { get; }
        public JudgeOutcome Judged { get; }

        private RoundOne(RunSpec spec, string name, string[] texts)
        {
            _run = new InProcessRun(spec, RepositoryPaths.NewTempFolder(name), pretrainedCache: RepositoryPaths.PretrainedCache);
            _run.Prepare();
            var folders = new Dictionary<string, string> { ["m1"] = _run.CheckpointFolder(0) };
            M1 = new BlobRef { Path = folders["m1"], Sha256 = "m1" };
            Context = new RoundJob.Context(new PhaseRequest { RunId = name, Spec = spec, Round = 1, Policy = M1, Initial = M1 },
                folders, TorchSharp.torch.CPU, _models, (_, _, _) => { }, CancellationToken.None);
            Prompts = RoundJob.RoundPrompts(spec, 1).Prompts;
            Responses = Prompts.Select(_ => (IReadOnlyList<int[]>)texts.Select(t => Examples.ResponseIds(Context.Tokenizer, t)).ToList()).ToList();
            Judged = RoundJob.Judge(Context, Responses);
        }

        public static RoundOne Start(RunSpec spec, string name, string[] texts) => new(spec, name, texts);

        public void Dispose()
        {
            _models.Dispose();
            _run.Dispose();
        }
    }

    /// <summary>
    /// Round 1's CREAM consistency recomputed without the judge or consistency code: per prompt, C = (Kendall's tau-b between
    /// the current and the previous judge's scores + 1) / 2, the scores derived by <paramref name="judges"/> from each response's
    /// log-probs under M1 and under M0; the round's C per prompt and its mean must equal them, and differ from 1 somewhere.
    /// </summary>
    private static void AssertRoundOneConsistency(RoundOne one, DecoderLM m0,
        Func<IReadOnlyList<ResponseScore>, IReadOnlyList<ResponseScore>, (double[] Current, double[] Previous)> judges)
    {
        var expected = ScoredByM1AndM0(one, m0).Select(p =>
        {
            var (current, previous) = judges(p.UnderM1, p.UnderM0);
            return (TauB(current, previous) + 1) / 2;
        }).ToArray();
        Assert.Contains(expected, c => c < 0.99); // the models disagree somewhere: C = 1 everywhere would not tell
        Assert.Equal(expected, one.Judged.Consistency, (a, b) => Math.Abs(a - b) < 1e-6);
        Assert.Equal(expected.Average(), one.Judged.Metrics["consistency/C"], 6);
    }

    private static double Sum(ResponseScore s) => s.TokenLogProbs.Sum(x => (double)x);
    private static double Mean(ResponseScore s) => s.TokenLogProbs.Average(x => (double)x);

    /// <summary>Kendall's tau-b, pair by pair: (concordant - discordant) / sqrt((n0 - ties in x) (n0 - ties in y)).</summary>
    private static double TauB(double[] x, double[] y)
    {
        double concordant = 0, discordant = 0, tiesX = 0, tiesY = 0, pairs = 0;
        for (int i = 0; i < x.Length; i++)
            for (int j = i + 1; j < x.Length; j++)
            {
                pairs++;
                double dx = Math.Sign(x[i] - x[j]), dy = Math.Sign(y[i] - y[j]);
                if (dx == 0) tiesX++;
                if (dy == 0) tiesY++;
                if (dx * dy > 0) concordant++;
                else if (dx * dy < 0) discordant++;
            }
        return (concordant - discordant) / Math.Sqrt((pairs - tiesX) * (pairs - tiesY));
    }

    /// <summary>
    /// CREAM's second round: the previous judge is M1 judging as it did in round 1, by its implicit reward against M0,
    /// not by its plain likelihood (which the previous round never used).
    /// </summary>
    [Fact]
    public void CreamsSecondRoundComparesWithM1sImplicitRewardAgainstM0()
    {
        var spec = new RunSpec
        {
            Prompts = new() { Task = "sort", EvalPrompts = 4 }, SftSteps = 30, EftExamples = 0, Rounds = 2, PromptsPerRound = 8, SamplesPerPrompt = 4, Consistency = "dyn", Seed = 3, Device = "cpu", Judge = new() { Kind = "implicit" }, Loss = new() { Kind = "cream" }
        };
        using var run = new InProcessRun(spec, RepositoryPaths.NewTempFolder("cream-round2"), pretrainedCache: RepositoryPaths.PretrainedCache);
        run.Prepare();
        run.RunRound();
        var folders = new Dictionary<string, string> { ["m1"] = run.CheckpointFolder(0), ["m2"] = run.CheckpointFolder(1) };
        BlobRef Model(string key) => new() { Path = folders[key], Sha256 = key };
        using var models = new ModelCache(RepositoryPaths.PretrainedCache);
        var context = new RoundJob.Context(new PhaseRequest { RunId = "cream", Spec = spec, Round = 2, Policy = Model("m2"), Initial = Model("m1"), TrainedFrom = Model("m1") },
            folders, TorchSharp.torch.CPU, models, (_, _, _) => { }, CancellationToken.None);
        var tokenizer = context.Tokenizer;
        var (task, prompts, _) = RoundJob.RoundPrompts(spec, 2);
        var responses = prompts.Select(_ => (IReadOnlyList<int[]>)new[] { "0123", "32", "1032547698", "9" }.Select(t => Examples.ResponseIds(tokenizer, t)).ToList()).ToList();
        var judged = RoundJob.Judge(context, responses);

        var groups = RoundPhases.Groups(tokenizer, prompts, responses);
        using var m0 = RoundJob.BeforeWarmStart(spec, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache)!;
        var settings = RunSpecMapping.ToRoundSettings(spec);
        double[][] Scores(DecoderLM policy, DecoderLM? reference) => JudgeFactory.Create(settings, policy, reference, tokenizer, task, null, spec.Seed, 2).Score(groups).Scores.ToArray();
        var current = Scores(context.Shared(Model("m2")), context.Shared(Model("m1")));
        double MeanTau(double[][] previous) => current.Select((c, i) => RankAgreement.KendallTauB(c, previous[i])).Average();
        double implicitTau = MeanTau(Scores(context.Shared(Model("m1")), m0));
        double likelihoodTau = MeanTau(Scores(context.Shared(Model("m1")), null));
        Assert.NotEqual(likelihoodTau, implicitTau, 3);   // the two readings are told apart by this case
        Assert.Equal(implicitTau, judged.Metrics["consistency/tau"], 9);
    }

    /// <summary>
    /// A prompt whose responses all went unscored says nothing: it is left out of judge/tau_vs_verifier (not counted
    /// as tau 0), and its C is the round's mean C, as CREAM's data.py gives it (not 0.5).
    /// </summary>
    [Fact]
    public void APromptWithNoScoredResponsesIsLeftOutOfTauAndGetsTheRoundsMeanC()
    {
        var task = new SortDigitsTask();
        var items = task.Prompts(3, 5, "train").ToList();
        var groups = items.Select(p => new ResponseGroup(p, Examples.PromptIds(Tokenizer, p.Prompt),
            new[] { p.Answer!, "0", p.Answer! + "1" }.Select(t => Examples.ResponseIds(Tokenizer, t)).ToList(), new[] { p.Answer!, "0", p.Answer! + "1" })).ToList();
        double[][] current = [[3, 1, 2], [3, 2, 1], [double.NaN, double.NaN, double.NaN]];
        double[][] previous = [[3, 1, 2], [3, 1, 2], [1, 2, 3]];
        var judged = RoundPhases.Judge(groups, new FixedJudge(current), new FixedJudge(previous),
            new RoundSettings { Consistency = "dyn", Judge = new() { Kind = "llm", Template = "compact" } }, task, ((ITextTokenizer)Tokenizer).Chat.EndOfResponse);

        // Against the verifier's [1, 0, 0]: prompts 0 and 1 only.
        double tau0 = RankAgreement.KendallTauB(current[0], new double[] { 1, 0, 0 }), tau1 = RankAgreement.KendallTauB(current[1], new double[] { 1, 0, 0 });
        Assert.Equal((tau0 + tau1) / 2, judged.Metrics["judge/tau_vs_verifier"], 9);
        Assert.Equal(1.0 / 3, judged.Metrics["judge/unscored_rate"], 9);
        // C: 1 for prompt 0 (same order), 2/3 for prompt 1 (tau 1/3), their mean for the unscored prompt 2.
        Assert.Equal([1.0, 2.0 / 3, 5.0 / 6], judged.Consistency, (a, b) => Math.Abs(a - b) < 1e-12);
        Assert.Equal(2.0 / 3, judged.Metrics["consistency/tau"], 9);
        Assert.Contains(RoundWarnings.For(judged.Metrics, null, null), w => w.Contains("33% of the responses unscored"));
    }
}
