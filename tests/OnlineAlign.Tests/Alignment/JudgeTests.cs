using OnlineAlign.Specs;
using OnlineAlign.Alignment.Judges;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Scoring;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Alignment;

public class JudgeTests
{
    private static ResponseGroup Group(int[] prompt, params int[][] responses) =>
        new(new PromptItem("p"), prompt, responses, responses.Select(r => string.Join(',', r)).ToList());

    [Fact]
    public void MajorityVoteScoresEachAnswerByTheShareOfSamplesThatGiveIt()
    {
        var group = new ResponseGroup(new PromptItem("sort 21="), [1], [[1], [2], [3], [4]], ["12", " 12\nmore", "21", ""]);
        var scores = new MajorityJudge().Score([group]).Scores[0];
        Assert.Equal([0.5, 0.5, 0.25, 0.0], scores);
    }

    [Fact]
    public void TheLikelihoodJudgeScoresMeanLogLikelihoodEveryRound()
    {
        using var policy = HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));
        using var earlier = BuiltinModels.Create(policy.Config, seed: 3);
        var group = Group([5, 6, 7], [8, 9], [10, 11, 12]);
        var judge = JudgeFactory.Create(new OnlineAlign.Alignment.Rounds.RoundSettings { Judge = new() { Kind = "likelihood" } }, policy, earlier, new ByteTokenizer(), null, null, 1, 2);
        var expected = ResponseLogProbs.Score(policy, group.ResponseIds.Select(r => new PromptResponse(group.PromptIds, r)).ToList()).Select(s => s.Mean);
        Assert.Equal(expected, judge.Score([group]).Scores[0], (a, b) => Math.Abs(a - b) < 1e-9);
    }

    [Fact]
    public void ImplicitRewardIsTheLogProbDifferenceAndFallsBackToMeanLikelihood()
    {
        using var policy = HfCheckpoint.Load(RepositoryPaths.Fixture("hf", "llama-tiny"));
        using var previous = BuiltinModels.Create(policy.Config, seed: 3);
        var group = Group([5, 6, 7], [8, 9], [10, 11, 12]);
        var rows = group.ResponseIds.Select(r => new PromptResponse(group.PromptIds, r)).ToList();
        var p = ResponseLogProbs.Score(policy, rows);
        var q = ResponseLogProbs.Score(previous, rows);

        var withPrevious = new ImplicitRewardJudge(policy, previous).Score([group]).Scores[0];
        Assert.Equal(p[0].Sum - q[0].Sum, withPrevious[0], 5);
        Assert.Equal(p[1].Sum - q[1].Sum, withPrevious[1], 5);
        var alone = new ImplicitRewardJudge(policy, null).Score([group]).Scores[0];
        Assert.Equal(p[1].Sum / 3, alone[1], 5);
    }

    [Theory]
    [InlineData("The answer is fine. Score: 4", 4.0)]
    [InlineData("Score: 2 ... on reflection, Score: 3.5", 3.5)]
    [InlineData("score:5", 5.0)]
    [InlineData("I give it a 4", null)]
    [InlineData("Score: 9", null)]
    public void LlmJudgeParsesTheLastScore(string judgement, double? expected) =>
        Assert.Equal(expected, LlmJudge.ParseScore(judgement));

    [Fact]
    public void LlmJudgeCountsUnparsableJudgementsAndExcludesThem()
    {
        // An untrained byte-level model does not write "Score: N": every judgement is a parse failure.
        var config = BuiltinModels.Tiny with { MaxPositions = 1024 };
        using var model = BuiltinModels.Create(config, seed: 1);
        var tokenizer = new ByteTokenizer();
        var judge = new LlmJudge(model, tokenizer, judgements: 2,
            new SamplingOptions { Temperature = 1, MaxNewTokens = 8, Seed = 1 }, judgeTemplate: "Q: {prompt} A: {response} Score:");
        var groups = new[] { new ResponseGroup(new PromptItem("sort 21="), [1], [[4], [5]], ["12", "21"]) };
        var result = judge.Score(groups);
        Assert.Equal(4, result.ParseFailures);
        Assert.All(result.Scores[0], s => Assert.True(double.IsNaN(s)));
    }

    [Fact]
    public void VerifierScoresCorrectAnswersOne()
    {
        var task = new SortDigitsTask();
        var item = new PromptItem("sort 312=", "123");
        var result = new VerifierJudge(task).Score([new ResponseGroup(item, [1], [[1], [2]], ["123", "132"])]);
        Assert.Equal([1.0, 0.0], result.Scores[0]);
    }
}
