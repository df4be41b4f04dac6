using OnlineAlign.Specs;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Workers;
using OnlineAlign.Execution.Specs;

namespace OnlineAlign.Tests.Specs;

/// <summary>A spec's budget: tokens a round may cost (refused at spec check) and wall time per phase attempt (a phase past it fails).</summary>
public class SpecBudgetTests
{
    [Fact]
    public void ASpecWhoseRoundCanCostMoreTokensThanItsBudgetIsRefusedNamingEachTerm()
    {
        Assert.Empty(RunSpecMapping.Problems(new RunSpec())); // the defaults fit their own budget

        // The built-in sort task's prompts are a few dozen byte tokens: the full check counts them.
        var spec = new RunSpec { PromptsPerRound = 100, SamplesPerPrompt = 4, Sampling = new() { MaxNewTokens = 16 }, Judge = new() { Kind = "llm", Judgements = 3 }, Optimizer = new() { Epochs = 2 } };
        var (generated, judged, trained, passes) = RunSpecMapping.RoundTokens(spec, 0);
        // Generated: the round's 400 responses and the default judge-drift probe's 4 x 4, sampled from the initial policy.
        // Judged: the round's 400 responses and the default pairwise set's 32 x 2 responses, each judged 3 times, and the
        // probe's 16 responses judged 3 times by each of two judges (the round's and the round-0 judge).
        Assert.Equal(((100L * 4 + 16) * 16, (100L * 4 + 64 + 2 * 16) * 16 * 3, 2L * 100 * 2 * 16, 3), (generated, judged, trained, passes));
        // Evaluated: the default 200 held-out prompts, each decoded greedily and sampled, the sample scored by three models.
        long withoutPrompts = generated + judged + trained + 200L * 5 * 16;

        // Below even the prompt-free count: refused before any file or prompt is read (the API silo's own check).
        var early = RunSpecMapping.Problems(spec with { Budget = new() { MaxTokensPerRound = withoutPrompts - 1 } }, readFiles: false);
        Assert.Contains(early, p => p.StartsWith($"budget.max_tokens_per_round is {withoutPrompts - 1}, but a round of this spec may cost {withoutPrompts} tokens: " +
            "prompts_per_round 100 x samples_per_prompt 4 x (prompt 0 + sampling.max_new_tokens 16) = 6400 generated and 256 for the judge-drift probe, " +
            "3 judge passes (llm) = 23808 judged (with guard.pairwise_pairs 32: 64 responses of the pairwise set, judged once; round 0 judges only these) " +
            "(with guard.probe_prompts 4: 16 responses of the judge-drift probe, sampled from the initial policy and judged by the round's judge and the round-0 judge)",
            StringComparison.Ordinal));
        Assert.Contains(early, p => p.EndsWith(", optimizer.epochs 2 x 2 x prompts_per_round = 6400 trained, prompts.eval_prompts 200 x 5 passes (a greedy and a " +
            "sampled decode, the sample scored by the policy, the reference and the initial model) = 16000 evaluated; raise the budget, or lower the counts",
            StringComparison.Ordinal));

        // Within the prompt-free count, beyond it once the prompts' tokens are counted: refused where the prompts are read.
        var full = RunSpecMapping.Problems(spec with { Budget = new() { MaxTokensPerRound = withoutPrompts } });
        var refusal = Assert.Single(full, p => p.StartsWith("budget.max_tokens_per_round", StringComparison.Ordinal));
        Assert.Matches(@"x \(prompt [1-9]\d* \+ sampling\.max_new_tokens 16\)", refusal);
        Assert.Contains("raise the budget, or lower the counts", refusal);
        Assert.Empty(RunSpecMapping.Problems(spec with { Budget = new() { MaxTokensPerRound = withoutPrompts * 10 } }));
    }

    [Fact]
    public void TheLlmJudgesTemplateAndJudgementLengthAreInTheBudget()
    {
        // Self-Rewarding's rubric: each of the k judgements reads the template around the sequence and writes a justification.
        var spec = new RunSpec
        {
            PromptsPerRound = 10, SamplesPerPrompt = 4, Sampling = new() { MaxNewTokens = 16 },
            Judge = new() { Kind = "llm", Judgements = 3, Template = "rubric", MaxNewTokens = 256 },
            Guard = new() { PairwisePairs = 0, ProbePrompts = 0 }, // the round's own responses alone (the pairwise set's, the probe's and
            Prompts = new() { EvalPrompts = 0 },                   // the evaluation's: the tests below)
        };
        var (_, judged, _, passes) = RunSpecMapping.RoundTokens(spec, maxPromptTokens: 10, judgeTemplateTokens: 400);
        Assert.Equal(10L * 4 * 3 * (10 + 16 + 400 + 256), judged);
        Assert.Equal(3, passes);
        // The compact template scores the digit's distribution: it reads its template and writes nothing.
        var compact = spec with { Judge = spec.Judge with { Template = "compact" } };
        Assert.Equal(10L * 4 * 3 * (10 + 16 + 5), RunSpecMapping.RoundTokens(compact, 10, judgeTemplateTokens: 5).Judged);
        // self_consistent: the LLM judgements, then the implicit reward's two passes; CREAM's consistency judges twice.
        var cream = spec with { Judge = spec.Judge with { Kind = "self_consistent" }, Consistency = "dyn" };
        var (_, creamJudged, _, creamPasses) = RunSpecMapping.RoundTokens(cream, 10, 400);
        Assert.Equal(2 * 10L * 4 * (2 * (10 + 16) + 3 * (10 + 16 + 400 + 256)), creamJudged);
        Assert.Equal(10, creamPasses);
        // The LLM judge with judge.implicit_agreement: the same passes as self_consistent (it measures what that filters on).
        var measured = spec with { Judge = spec.Judge with { ImplicitAgreement = true } };
        Assert.Equal(10L * 4 * (2 * (10 + 16) + 3 * (10 + 16 + 400 + 256)), RunSpecMapping.RoundTokens(measured, 10, 400).Judged);

        // Through the full check (the tokenizer counts the prompts and the rubric's tokens): a budget that fits the round
        // without them is refused once they are counted, and the refusal says what a judgement costs.
        var (generated, judgedWithout, trained, _) = RunSpecMapping.RoundTokens(spec, 0);
        var refusal = Assert.Single(RunSpecMapping.Problems(spec with { Budget = new() { MaxTokensPerRound = generated + judgedWithout + trained } }),
            p => p.StartsWith("budget.max_tokens_per_round", StringComparison.Ordinal));
        Assert.Matches(@"each LLM judgement reads the sequence and [1-9]\d\d+ judge template tokens and writes up to judge.max_new_tokens 256", refusal);
    }

    [Fact]
    public void ThePairwiseSetsJudgingIsInTheBudgetAsTheRoundsJudgingIs()
    {
        // Each of its chosen and rejected responses costs what one of the round's responses costs the round's judge; the
        // consistency judge does not score it.
        var spec = new RunSpec
        {
            PromptsPerRound = 10, SamplesPerPrompt = 4, Sampling = new() { MaxNewTokens = 16 }, Consistency = "dyn",
            Judge = new() { Kind = "self_consistent", Judgements = 3, Template = "rubric", MaxNewTokens = 256 },
            Guard = new() { ProbePrompts = 0 }, // the pairwise set alone (the probe's: the test below)
        };
        long perResponse = 2 * (10 + 16) + 3 * (10 + 16 + 400 + 256);
        long without = RunSpecMapping.RoundTokens(spec with { Guard = spec.Guard with { PairwisePairs = 0 } }, 10, 400).Judged;
        Assert.Equal(2 * 10L * 4 * perResponse, without);
        Assert.Equal(64, RunSpecMapping.PairwiseResponses(spec));
        Assert.Equal(without + 64 * perResponse, RunSpecMapping.RoundTokens(spec, 10, 400).Judged);
        Assert.Equal(without + 2 * 100 * perResponse,
            RunSpecMapping.RoundTokens(spec with { Guard = spec.Guard with { PairwisePairs = 100 } }, 10, 400).Judged);
        // Round 0 judges only the pairwise set, with the round-0 judge at the same cost per response: never more than a round.
        Assert.Equal(64 * perResponse, RunSpecMapping.Round0Tokens(spec, 10, 400));

        // Not measured, not counted: a remote judge, a JSONL prompt set without a pairwise file; a pairwise file is counted.
        Assert.Equal(0, RunSpecMapping.PairwiseResponses(spec with { Judge = spec.Judge with { Kind = "remote" } }));
        var jsonl = spec with { Prompts = new() { JsonlPath = "prompts.jsonl" } };
        Assert.Equal(0, RunSpecMapping.PairwiseResponses(jsonl));
        Assert.Equal(64, RunSpecMapping.PairwiseResponses(jsonl with { Guard = new() { PairwiseJsonl = "pairs.jsonl" } }));

        // A budget that fits the round's own judging is refused once the pairwise set is counted, naming it.
        var llm = new RunSpec { PromptsPerRound = 100, SamplesPerPrompt = 4, Sampling = new() { MaxNewTokens = 16 }, Judge = new() { Kind = "llm", Judgements = 3 } };
        var (generated, judged, trained, _) = RunSpecMapping.RoundTokens(llm with { Guard = new() { PairwisePairs = 0 } }, 0);
        var refusal = Assert.Single(RunSpecMapping.Problems(llm with { Budget = new() { MaxTokensPerRound = generated + judged + trained } }, readFiles: false),
            p => p.StartsWith("budget.max_tokens_per_round", StringComparison.Ordinal));
        Assert.Contains("(with guard.pairwise_pairs 32: 64 responses of the pairwise set, judged once; round 0 judges only these)", refusal);
    }

    [Fact]
    public void TheJudgeDriftProbesSamplingAndJudgingAreInTheBudget()
    {
        // Each round samples the probe again from the initial policy (samples_per_prompt for each of the first probe_prompts of
        // round 1's prompts) and judges it with the round's judge and the round-0 judge, each at a round response's cost; the
        // consistency judge does not score it.
        var spec = new RunSpec
        {
            PromptsPerRound = 10, SamplesPerPrompt = 4, Sampling = new() { MaxNewTokens = 16 }, Consistency = "dyn",
            Judge = new() { Kind = "self_consistent", Judgements = 3, Template = "rubric", MaxNewTokens = 256 },
            Guard = new() { PairwisePairs = 0, ProbePrompts = 4 },
        };
        long perResponse = 2 * (10 + 16) + 3 * (10 + 16 + 400 + 256);
        var off = RunSpecMapping.RoundTokens(spec with { Guard = spec.Guard with { ProbePrompts = 0 } }, 10, 400);
        var on = RunSpecMapping.RoundTokens(spec, 10, 400);
        Assert.Equal(16, RunSpecMapping.ProbeResponses(spec));
        Assert.Equal(off.Generated + 16 * (10 + 16), on.Generated);
        Assert.Equal(off.Judged + 2 * 16 * perResponse, on.Judged);
        Assert.Equal(off.Trained, on.Trained);

        // At most the round's prompts; not measured, not counted: 0 probe prompts, a remote judge. A judge that reads no model
        // (verifier) judges it for free, but the probe is still sampled.
        Assert.Equal(2 * 4, RunSpecMapping.ProbeResponses(spec with { PromptsPerRound = 2, Guard = spec.Guard with { ProbePrompts = 256 } }));
        Assert.Equal(0, RunSpecMapping.ProbeResponses(spec with { Guard = spec.Guard with { ProbePrompts = 0 } }));
        Assert.Equal(0, RunSpecMapping.ProbeResponses(spec with { Judge = spec.Judge with { Kind = "remote" } }));
        var verifier = spec with { Judge = new() { Kind = "verifier" } };
        Assert.Equal(RunSpecMapping.RoundTokens(verifier with { Guard = spec.Guard with { ProbePrompts = 0 } }, 10).Generated + 16 * (10 + 16),
            RunSpecMapping.RoundTokens(verifier, 10).Generated);
        Assert.Equal(0, RunSpecMapping.RoundTokens(verifier, 10).Judged);

        // A spec just within the budget without the probe is refused with it, and the refusal names the probe's share.
        var llm = new RunSpec
        {
            PromptsPerRound = 100, SamplesPerPrompt = 4, Sampling = new() { MaxNewTokens = 16 }, Judge = new() { Kind = "llm", Judgements = 3 },
            Guard = new() { PairwisePairs = 0 }, Prompts = new() { EvalPrompts = 0 }, // the probe alone (the evaluation's: the test below)
        };
        // (Prompts of 0 tokens: the built-in task's prompts are counted wherever a spec is checked, so the estimate is asked directly.)
        var (generated, judged, trained, _) = RunSpecMapping.RoundTokens(llm with { Guard = llm.Guard with { ProbePrompts = 0 } }, 0);
        long withoutProbe = generated + judged + trained;
        Assert.Null(RunSpecMapping.TokenBudgetProblem(llm with { Guard = llm.Guard with { ProbePrompts = 0 }, Budget = new() { MaxTokensPerRound = withoutProbe } }, 0));
        string? refusal = RunSpecMapping.TokenBudgetProblem(llm with { Budget = new() { MaxTokensPerRound = withoutProbe } }, 0);
        long withProbe = withoutProbe + 16 * 16 + 2 * 16 * 16 * 3;
        Assert.Equal($"budget.max_tokens_per_round is {withoutProbe}, but a round of this spec may cost {withProbe} tokens: " +
            "prompts_per_round 100 x samples_per_prompt 4 x (prompt 0 + sampling.max_new_tokens 16) = 6400 generated and 256 for the judge-drift probe, " +
            "3 judge passes (llm) = 20736 judged (with guard.probe_prompts 4: 16 responses of the judge-drift probe, sampled from the initial policy " +
            "and judged by the round's judge and the round-0 judge), optimizer.epochs 1 x 2 x prompts_per_round = 3200 trained; " +
            "raise the budget, or lower the counts", refusal);
        Assert.Null(RunSpecMapping.TokenBudgetProblem(llm with { Budget = new() { MaxTokensPerRound = withProbe } }, 0));

        // Through the whole check (the gRPC edge's), the refusal is not cut however many terms it names.
        var rubric = llm with
        {
            Judge = new() { Kind = "self_consistent", Judgements = 3, Template = "rubric", MaxNewTokens = 256 }, Consistency = "dyn",
            Guard = new(), Prompts = new(), Budget = new() { MaxTokensPerRound = 1000 },
        };
        var whole = Assert.Single(RunSpecMapping.Problems(rubric, readFiles: false), p => p.StartsWith("budget.max_tokens_per_round", StringComparison.Ordinal));
        Assert.EndsWith("evaluated; raise the budget, or lower the counts", whole);
        Assert.Contains("judge-drift probe", whole);
    }

    [Fact]
    public void TheEvaluationsDecodingAndScoringAreInTheBudget()
    {
        // A round small enough to count by hand: 2 prompts x 2 samples, prompts of 6 tokens and responses of up to 4 (sequences
        // of 10), a verifier judge (no model pass), no pairwise set or probe, one epoch, and 3 held-out prompts evaluated.
        var spec = new RunSpec
        {
            PromptsPerRound = 2, SamplesPerPrompt = 2, Sampling = new() { MaxNewTokens = 4 }, Judge = new() { Kind = "verifier" },
            Guard = new() { PairwisePairs = 0, ProbePrompts = 0 }, Optimizer = new() { Epochs = 1 }, Prompts = new() { EvalPrompts = 3 },
        };
        // Generated 2 x 2 x 10 = 40, judged 0, trained 1 x 2 pairs' chosen and rejected x 10 = 40; evaluated: each of the 3
        // prompts decoded greedily (10) and sampled (10), the sample read by the policy, the reference and the initial model
        // (30): 3 x 50 = 150. 40 + 0 + 40 + 150 = 230.
        Assert.Equal(150, RunSpecMapping.EvaluationTokens(spec, 6));
        Assert.Null(RunSpecMapping.TokenBudgetProblem(spec with { Budget = new() { MaxTokensPerRound = 230 } }, 6));
        Assert.Equal("budget.max_tokens_per_round is 229, but a round of this spec may cost 230 tokens: prompts_per_round 2 x samples_per_prompt 2 " +
            "x (prompt 6 + sampling.max_new_tokens 4) = 40 generated, 0 judge passes (verifier) = 0 judged, optimizer.epochs 1 x 2 x prompts_per_round = 40 trained, " +
            "prompts.eval_prompts 3 x 5 passes (a greedy and a sampled decode, the sample scored by the policy, the reference and the initial model) = 150 evaluated; " +
            "raise the budget, or lower the counts",
            RunSpecMapping.TokenBudgetProblem(spec with { Budget = new() { MaxTokensPerRound = 229 } }, 6));

        // Refused only because of the evaluation: a budget the round fits with room to spare, and no evaluation, passes; the
        // same budget with 1000 held-out prompts (5 x 10 tokens each) is refused, naming prompts.eval_prompts.
        var round = spec with { Prompts = new() { EvalPrompts = 0 }, Budget = new() { MaxTokensPerRound = 1000 } };
        Assert.Null(RunSpecMapping.TokenBudgetProblem(round, 6));
        string? refusal = RunSpecMapping.TokenBudgetProblem(round with { Prompts = new() { EvalPrompts = 1000 } }, 6);
        Assert.NotNull(refusal);
        Assert.StartsWith("budget.max_tokens_per_round is 1000, but a round of this spec may cost 50080 tokens: ", refusal);
        Assert.EndsWith("= 40 trained, prompts.eval_prompts 1000 x 5 passes (a greedy and a sampled decode, the sample scored by the policy, " +
            "the reference and the initial model) = 50000 evaluated; raise the budget, or lower the counts", refusal);

        // Round 0 evaluates too: its pairwise judging and its evaluation, never more than a round's. A JSONL prompt set has no
        // held-out prompts: nothing evaluated, nothing counted, and the refusal names no evaluation.
        Assert.Equal(0, RunSpecMapping.EvaluationTokens(spec with { Prompts = new() { JsonlPath = "prompts.jsonl", EvalPrompts = 1000 } }, 6));
        Assert.DoesNotContain("eval_prompts", RunSpecMapping.TokenBudgetProblem(spec with
            { Prompts = new() { JsonlPath = "prompts.jsonl", EvalPrompts = 1000 }, Budget = new() { MaxTokensPerRound = 1 } }, 6)!, StringComparison.Ordinal);

        // Through the whole check (a built-in task's prompts counted by its tokenizer): a budget of 4032, the prompt-free count
        // with the default 200 held-out prompts (2 x 2 x 4 + 2 x 2 x 4 + 200 x 5 x 4), passes the first check and fits the round
        // without its evaluation; with the prompts' tokens counted, the evaluation is what passes it.
        Assert.Empty(RunSpecMapping.Problems(spec with { Prompts = new() { EvalPrompts = 0 }, Budget = new() { MaxTokensPerRound = 4032 } }));
        string over = Assert.Single(RunSpecMapping.Problems(spec with { Prompts = new() { EvalPrompts = 200 }, Budget = new() { MaxTokensPerRound = 4032 } }));
        int promptTokens = int.Parse(System.Text.RegularExpressions.Regex.Match(over, @"\(prompt (\d+) \+").Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(promptTokens, 1, 100);
        long sequence = promptTokens + 4;
        Assert.Contains($"may cost {2 * 2 * sequence + 2 * 2 * sequence + 200 * 5 * sequence} tokens", over);
        Assert.Contains($"prompts.eval_prompts 200 x 5 passes (a greedy and a sampled decode, the sample scored by the policy, the reference and the initial model) " +
            $"= {200 * 5 * sequence} evaluated", over);
    }

    [Fact]
    public void BudgetsOutOfRangeAreNamed()
    {
        var problems = RunSpecMapping.Problems(new RunSpec { Budget = new() { MaxTokensPerRound = 0, MaxPhaseSeconds = -5 } });
        Assert.Contains("budget.max_tokens_per_round must be between 1 and 1000000000000, got 0", problems);
        Assert.Contains("budget.max_phase_seconds must be between 1 and 2592000, got -5", problems);
    }

    [Fact]
    public async Task APhasePastItsTimeBudgetIsCancelledAndFailsNamingTheBudget()
    {
        var clock = new ManualTime();
        var attempt = PhaseDeadline.Run("judge", 1, CancellationToken.None, async ct =>
        {
            await Task.Delay(Timeout.Infinite, ct); // a phase that would never finish by itself
            return 0;
        }, clock);
        Assert.False(attempt.IsCompleted);
        clock.Fire();                               // one second later, as far as the budget can tell
        var failure = await Assert.ThrowsAsync<PhaseFailedException>(() => attempt);
        Assert.Equal("phase judge exceeded budget.max_phase_seconds=1", failure.Message);
        // A permanent failure: the orchestrator counts it against max_phase_attempts, never retrying it forever.
        Assert.Equal(OnlineAlign.Grains.Runs.FailureKind.Deterministic, OnlineAlign.Grains.Runs.FailureClassifier.Classify(failure));
    }

    [Fact]
    public async Task ACallersCancellationStaysACancellationAndAPhaseWithinItsBudgetReturns()
    {
        using var caller = new CancellationTokenSource();
        caller.Cancel();
        var clock = new ManualTime();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => PhaseDeadline.Run("train", 1, caller.Token, async ct =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            return 0;
        }, clock));
        Assert.Equal(42, await PhaseDeadline.Run("train", 1, CancellationToken.None, _ => Task.FromResult(42), clock));
        Assert.Equal(TimeSpan.FromSeconds(1), clock.LastDue);
    }

    /// <summary>A clock whose timers fire when the test says so.</summary>
    private sealed class ManualTime : TimeProvider
    {
        private readonly List<(TimerCallback Callback, object? State)> _timers = [];
        public TimeSpan LastDue { get; private set; }

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            lock (_timers) _timers.Add((callback, state));
            LastDue = dueTime;
            return new Timer();
        }

        public void Fire()
        {
            List<(TimerCallback Callback, object? State)> due;
            lock (_timers) due = [.. _timers];
            foreach (var (callback, state) in due) callback(state);
        }

        private sealed class Timer : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;
            public void Dispose() { }
            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
