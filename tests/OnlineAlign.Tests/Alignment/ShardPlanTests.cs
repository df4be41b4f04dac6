using OnlineAlign.Alignment.Health;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Specs;

namespace OnlineAlign.Tests.Alignment;

/// <summary>Shards cut on the unsharded phase's batch boundaries, merged back exactly once, and giving the unsharded numbers.</summary>
public class ShardPlanTests
{
    [Fact]
    public void UnitsAreTheFewestItemsThatFillWholeBatches()
    {
        Assert.Equal(8, ShardPlan.Unit(rowsPerItem: 4, batchRows: 32));
        Assert.Equal(32, ShardPlan.Unit(3, 32));
        Assert.Equal(1, ShardPlan.Unit(64, 32));
        Assert.Equal(2, ShardPlan.Unit(48, 32));    // 96 rows = 3 batches
        Assert.Equal(16, ShardPlan.Combine(8, 16, 4));
        Assert.Equal(24, ShardPlan.Combine(8, 3));
        Assert.Throws<ArgumentException>(() => ShardPlan.Unit(0, 32));
    }

    [Theory]
    [InlineData(48, 4, 8)]
    [InlineData(48, 2, 16)]
    [InlineData(50, 4, 8)]
    [InlineData(10, 3, 1)]
    [InlineData(7, 5, 4)]
    [InlineData(0, 3, 2)]
    public void ShardsCoverEveryItemOnceInOrderAndAreCutOnlyOnUnitBoundaries(int items, int replicas, int unit)
    {
        var shards = ShardPlan.Cut(items, replicas, unit);
        Assert.Equal(Enumerable.Range(0, items), shards.SelectMany(s => s));
        Assert.InRange(shards.Count, 1, replicas);
        Assert.All(shards.Skip(1), s => Assert.True(s.Count == 0 || s[0] % unit == 0, $"shard starting at {s[0]} is not on a unit boundary"));
        // As many shards as there are units, up to the replicas; none empty where there are items.
        Assert.Equal(Math.Clamp((items + unit - 1) / unit, 1, replicas), shards.Count);
        if (items > 0) Assert.All(shards, s => Assert.NotEmpty(s));
    }

    [Fact]
    public void TheMergeRefusesAMissingOrADuplicatedPromptNamingIt()
    {
        IReadOnlyList<int> a = [0, 1], b = [2];
        IReadOnlyList<string> va = ["x", "y"], vb = ["z"];
        Assert.Equal(["x", "y", "z"], ShardPlan.Merge([(b, vb), (a, va)], 3, "judge"));
        var missing = Assert.Throws<InvalidDataException>(() => ShardPlan.Merge([(a, va)], 3, "judge"));
        Assert.Contains("position 2 is in no shard", missing.Message);
        var twice = Assert.Throws<InvalidDataException>(() => ShardPlan.Merge([(a, va), (b, vb), ([1], ["again"])], 3, "judge"));
        Assert.Contains("position 1 appears in two shards", twice.Message);
        Assert.Throws<InvalidDataException>(() => ShardPlan.Merge([([0, 5], ["x", "y"])], 3, "judge"));

        // The judge's own shards: scores for a prompt twice, or none, are refused the same way.
        var s0 = new JudgeScores([0], [[1.0]], null, null, 0);
        var s1 = new JudgeScores([1], [[2.0]], null, null, 1);
        Assert.Equal(1, JudgeScores.Merge([s1, s0], 2).ParseFailures);
        Assert.Contains("appears in two shards", Assert.Throws<InvalidDataException>(() => JudgeScores.Merge([s0, s1, s0], 2)).Message);
        Assert.Contains("is in no shard", Assert.Throws<InvalidDataException>(() => JudgeScores.Merge([s0], 2)).Message);
        // The judge-drift probe comes from the one shard that ran it (shard 0), NaN included; none: the merge runs it itself.
        Assert.Equal(0.25, JudgeScores.Merge([s1, s0 with { DriftTau = 0.25 }], 2).DriftTau!.Value);
        Assert.True(double.IsNaN(JudgeScores.Merge([s0 with { DriftTau = double.NaN }, s1], 2).DriftTau!.Value));
        Assert.Null(JudgeScores.Merge([s0, s1], 2).DriftTau);
        // judge/pairwise_* ride with the drift probe, on shard 0.
        Assert.Equal(0.75, JudgeScores.Merge([s1, s0 with { DriftTau = 0.25, Pairwise = new() { ["judge/pairwise_accuracy"] = 0.75 } }], 2)
            .Pairwise!["judge/pairwise_accuracy"]);
        Assert.Contains("carry the judge-drift probe", Assert.Throws<InvalidDataException>(() =>
            JudgeScores.Merge([s0 with { DriftTau = 0.25 }, s1 with { DriftTau = 0.25 }], 2)).Message);
    }

    [Theory]
    [InlineData("implicit")]
    [InlineData("compact")]
    [InlineData("sampled")]
    [InlineData("self_consistent")]
    [InlineData("llm_implicit_agreement")]   // judge.implicit_agreement: the LLM judge's scores, the implicit reward recorded beside them
    public void AJudgeShardedOnBatchBoundariesGivesTheUnshardedScoresAndMetricsBitForBit(string kind)
    {
        using var policy = BuiltinModels.Create(BuiltinModels.Tiny, 5);
        using var previous = BuiltinModels.Create(BuiltinModels.Tiny, 6);
        var tokenizer = new ByteTokenizer();
        var task = new SortDigitsTask();
        var items = task.Prompts(12, 4, "train").ToList();
        var indices = Enumerable.Range(40, items.Count).ToList();
        const int samples = 4;
        var settings = new RoundSettings { SamplesPerPrompt = samples, Consistency = "dyn", Sampling = new SamplingSpec { MaxNewTokens = 6, BatchSize = 8 } };
        var groups = RoundPhases.Generate(policy, tokenizer, items, indices, settings, seed: 3, round: 2);
        IJudge Make(DecoderLM model, DecoderLM? reference) => kind switch
        {
            "implicit" => new ImplicitRewardJudge(model, reference),
            "compact" => Llm(model, LlmJudgeScoring.Expected),
            "sampled" => Llm(model, LlmJudgeScoring.Sampled),
            "llm_implicit_agreement" => new AgreementJudge(Llm(model, LlmJudgeScoring.Expected), new ImplicitRewardJudge(model, reference), "llm"),
            _ => new AgreementJudge(Llm(model, LlmJudgeScoring.Expected), new ImplicitRewardJudge(model, reference)),
        };
        LlmJudge Llm(DecoderLM model, LlmJudgeScoring scoring) => new(model, tokenizer, 2,
            new SamplingOptions { Temperature = 0.7, TopP = 0.95, MaxNewTokens = 4, Seed = 5 }, scoring == LlmJudgeScoring.Expected ? "compact" : "{prompt}{response} Score:", scoring, maxBatch: 8);
        var judge = Make(policy, previous);
        var before = Make(previous, null);

        var whole = RoundPhases.Judge(groups, judge, before, settings, task, tokenizer.EosId);
        // Cut as the cluster cuts: 32-row scorer chunks of 4 rows a prompt (8 prompts), and the sampled judge's 8-row
        // batches of 4 x 2 judgement rows (1 prompt). 12 prompts over 3 replicas: shards of 8 and 4 prompts.
        int unit = ShardPlan.Combine(ShardPlan.Unit(samples, ShardUnits.ScoringRows), ShardPlan.Unit(samples * 2, 8));
        var cuts = ShardPlan.Cut(groups.Count, 3, unit);
        Assert.True(cuts.Count > 1);
        var shards = cuts.Select(positions => RoundPhases.ScoreShard(groups, positions, judge, before)).Reverse().ToList();
        var sharded = RoundPhases.Summarize(groups, JudgeScores.Merge(shards, groups.Count), settings, task, tokenizer.EosId);

        Assert.Equal(whole.Scores, sharded.Scores);
        Assert.Equal(whole.Consistency, sharded.Consistency);
        Assert.Equal(whole.Agreement, sharded.Agreement);
        Assert.Equal(whole.Metrics.OrderBy(kv => kv.Key), sharded.Metrics.OrderBy(kv => kv.Key));
        // The implicit reward travelled through the shards and was measured, not dropped on both sides alike.
        bool recordsAgreement = kind is "self_consistent" or "llm_implicit_agreement";
        Assert.Equal(recordsAgreement, sharded.Agreement is not null);
        Assert.Equal(recordsAgreement, sharded.Metrics.ContainsKey(HealthSignals.ImplicitAgreement));
    }

    [Fact]
    public void PairsReferenceLogProbsAndEvaluationShardedOnChunkBoundariesGiveTheUnshardedNumbers()
    {
        using var policy = BuiltinModels.Create(BuiltinModels.Tiny, 5);
        using var reference = BuiltinModels.Create(BuiltinModels.Tiny, 6);
        var tokenizer = new ByteTokenizer();
        var task = new SortDigitsTask();
        var settings = new RoundSettings { SamplesPerPrompt = 3, Sampling = new SamplingSpec { MaxNewTokens = 4, BatchSize = 8 } };
        var groups = JudgeTestData.Groups(40, 3);
        var scores = groups.Select((g, i) => g.ResponseIds.Select((_, k) => (double)((i + k) % 3)).ToArray()).ToList();
        var consistency = Enumerable.Repeat(1.0, groups.Count).ToArray();

        // Pairs: 40 pairs of 2 rows in 32-row chunks, cut every 16 pairs: 3 shards.
        var whole = RoundPhases.BuildPairs(groups, scores, consistency, settings, reference, 11, 0);
        var plan = RoundPhases.PlanPairs(groups, scores, consistency, settings, 11);
        var cuts = ShardPlan.Cut(plan.Pairs.Count, 4, ShardPlan.Unit(plan.RowsPerPair, RoundPhases.PairChunkRows));
        Assert.Equal(3, cuts.Count);
        var sums = ShardPlan.Merge(cuts.Select(c => ((IReadOnlyList<int>)c, (IReadOnlyList<double[]>)RoundPhases.ReferenceLogProbs(plan, c, reference, 0))), plan.Pairs.Count, "pairs");
        var sharded = RoundPhases.AssemblePairs(plan, sums);
        Assert.Equal(whole.Examples.Select(e => (e.ReferenceChosen, e.ReferenceRejected, e.Consistency)), sharded.Select(e => (e.ReferenceChosen, e.ReferenceRejected, e.Consistency)));

        // Evaluation: 33 prompts in 16-row KL chunks: 3 shards, merged, give the unsharded metrics.
        var evalPrompts = task.Prompts(33, 9, "validation").ToList();
        var metrics = RoundPhases.Evaluate(policy, reference, reference, tokenizer, task, evalPrompts, 4, 5, 8);
        var evalShards = ShardPlan.Cut(evalPrompts.Count, 4, ShardUnits.Evaluation)
            .Select(c => RoundPhases.EvaluateShard(policy, reference, reference, tokenizer, task, evalPrompts, c, 4, 5, 8)).Reverse().ToList();
        Assert.Equal(3, evalShards.Count);
        var merged = RoundPhases.SummarizeEvaluation(EvalShard.Merge(evalShards, evalPrompts.Count), hasTask: true);
        Assert.Equal(metrics.OrderBy(kv => kv.Key), merged.OrderBy(kv => kv.Key));
        Assert.Contains("is in no shard", Assert.Throws<InvalidDataException>(() => EvalShard.Merge(evalShards.Skip(1).ToList(), evalPrompts.Count)).Message);
    }

    [Fact]
    public void TheCompactJudgeGivesTheUnshardedScoresForAnyCut()
    {
        // Its scorer gets the whole round (the prefix all rows share, the cache's size) and runs the chunks a shard touches.
        using var policy = BuiltinModels.Create(BuiltinModels.Tiny, 5);
        var tokenizer = new ByteTokenizer();
        var groups = RoundPhases.Generate(policy, tokenizer, new SortDigitsTask().Prompts(7, 4, "train").ToList(), Enumerable.Range(0, 7).ToList(),
            new RoundSettings { SamplesPerPrompt = 3, Sampling = new SamplingSpec { MaxNewTokens = 5 } }, seed: 1, round: 1);
        var judge = new LlmJudge(policy, tokenizer, 1, new SamplingOptions { MaxNewTokens = 4 }, "compact", LlmJudgeScoring.Expected);
        var whole = judge.Score(groups).Scores;
        var pieces = ShardPlan.Cut(groups.Count, 3, 1).SelectMany(p => judge.ScoreShard(groups, p).Scores).ToList();
        Assert.Equal(whole, pieces);
    }

    [Fact]
    public void AJudgementsSeedComesFromItsPromptSampleAndJudgementNotItsRow()
    {
        Assert.Equal(Seeds.Judgement(9, 3, 1, 0), Seeds.Judgement(9, 3, 1, 0));
        var seeds = new[] { Seeds.Judgement(9, 3, 1, 0), Seeds.Judgement(9, 3, 1, 1), Seeds.Judgement(9, 3, 0, 1), Seeds.Judgement(9, 4, 1, 0), Seeds.For(9, 3, 1, 0) };
        Assert.Equal(seeds.Length, seeds.Distinct().Count());
    }
}
