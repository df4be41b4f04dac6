using OnlineAlign.Contracts;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Silo.Api;
using OnlineAlign.Specs;
using V1 = OnlineAlign.Api.V1;

namespace OnlineAlign.Tests.Specs;

/// <summary>The guard section: off by default, every bad threshold refused naming its field, and carried over the wire intact.</summary>
public class GuardSpecTests
{
    [Fact]
    public void BadGuardValuesAreRefusedNamingTheField()
    {
        Assert.False(new RunSpec().Guard.Enabled);
        var problems = RunSpecMapping.Problems(new RunSpec
        {
            Guard = new() { Enabled = true, MinJudgeTau = 1.5, MaxKlInitial = 0, MaxLengthDrift = double.NaN, MaxUnscoredRate = -0.1,
                MinScoreEntropy = 2, MinImplicitAgreement = double.NegativeInfinity, ProbePrompts = -1, MaxKlInitialPerToken = -0.1,
                MaxScoreEntropy = 1.5, MinMajorityAgreement = -2, MaxScoreEntropyRise = -0.01 },
        }, countsOnly: true);
        Assert.Contains("guard.min_judge_tau must be at most 1, got 1.5", problems);
        Assert.Contains("guard.max_kl_initial must be > 0, got 0", problems);
        Assert.Contains("guard.max_length_drift must be a finite number, got NaN", problems);
        Assert.Contains("guard.max_unscored_rate must be >= 0, got -0.1", problems);
        Assert.Contains("guard.min_score_entropy must be at most 1, got 2", problems);
        Assert.Contains(problems, p => p.StartsWith("guard.min_implicit_agreement must be a finite number, got ", StringComparison.Ordinal));
        Assert.Contains($"guard.probe_prompts must be between 0 and {GuardSpec.ProbePromptsLimit}, got -1", problems);
        Assert.Contains("guard.max_kl_initial_per_token must be >= 0, got -0.1", problems);
        Assert.Contains("guard.max_score_entropy must be at most 1, got 1.5", problems);
        Assert.Contains("guard.min_majority_agreement must be >= -1, got -2", problems);
        Assert.Contains("guard.max_score_entropy_rise must be >= 0, got -0.01", problems);
        Assert.Contains("guard.max_score_entropy_rise must be at most 1, got 1.5",
            RunSpecMapping.Problems(new RunSpec { Guard = new() { MaxScoreEntropyRise = 1.5 } }, countsOnly: true));
        Assert.Contains(RunSpecMapping.Problems(new RunSpec { Guard = new() { MaxKlInitialPerToken = double.NaN } }, countsOnly: true),
            p => p.StartsWith("guard.max_kl_initial_per_token must be a finite number", StringComparison.Ordinal));
        Assert.Empty(RunSpecMapping.Problems(new RunSpec { Guard = new() { Enabled = true, MaxKlInitialPerToken = 0.05 } }, countsOnly: true));
        Assert.Empty(RunSpecMapping.Problems(new RunSpec { Guard = new() { Enabled = true } }, countsOnly: true));
    }

    [Fact]
    public void ABoundOnImplicitAgreementNeedsAJudgeThatRecordsIt()
    {
        // The LLM judge records health/implicit_agreement only with judge.implicit_agreement; a bound on it otherwise never trips.
        var bound = new RunSpec { Guard = new() { Enabled = true, MinImplicitAgreement = 0 } };
        Assert.Contains("guard.min_implicit_agreement reads health/implicit_agreement, which judge.kind 'llm' does not record: " +
            "use judge.kind self_consistent, or llm with judge.implicit_agreement true", RunSpecMapping.Problems(bound, countsOnly: true));
        Assert.Empty(RunSpecMapping.Problems(bound with { Judge = new() { ImplicitAgreement = true } }, countsOnly: true));
        Assert.Empty(RunSpecMapping.Problems(bound with { Judge = new() { Kind = "self_consistent" } }, countsOnly: true));
        Assert.Contains(RunSpecMapping.Problems(bound with { Judge = new() { Kind = "majority" } }, countsOnly: true),
            p => p.StartsWith("guard.min_implicit_agreement reads health/implicit_agreement, which judge.kind 'majority' does not", StringComparison.Ordinal));
        // An unknown kind is the judge section's refusal alone (bounded), not echoed again here.
        Assert.DoesNotContain(RunSpecMapping.Problems(bound with { Judge = new() { Kind = new string('x', 100_000) } }, countsOnly: true),
            p => p.StartsWith("guard.min_implicit_agreement", StringComparison.Ordinal));
        // The measurement itself belongs to the LLM judge.
        Assert.Contains("judge.implicit_agreement is for judge.kind 'llm' (kind 'majority' has no LLM judge to compare with the implicit " +
            "reward; self_consistent records health/implicit_agreement always)",
            RunSpecMapping.Problems(new RunSpec { Judge = new() { Kind = "majority", ImplicitAgreement = true } }, countsOnly: true));
    }

    [Fact]
    public void TheGuardSectionMirrorsItsProtoMessageAndTravelsIntact()
    {
        Assert.Equal(V1.GuardSpec.Descriptor.Fields.InDeclarationOrder().Select(f => f.PropertyName).Order(),
            SectionMapping.Properties(typeof(GuardSpec)).Select(p => p.Name).Order());
        var spec = new RunSpec { Guard = new() { Enabled = true, MinJudgeTau = 0.2, ProbePrompts = 2 } };
        Assert.Equal(spec, SpecConversion.FromProto(SpecConversion.ToProto(spec)));
        Assert.Equal(new GuardSpec { MaxKlInitial = 3 }, SpecConversion.FromProto(new V1.RunSpec { Guard = new V1.GuardSpec { MaxKlInitial = 3 } }).Guard);
        Assert.Equal(new GuardSpec { MaxKlInitialPerToken = 0.05 },
            SpecConversion.FromProto(new V1.RunSpec { Guard = new V1.GuardSpec { MaxKlInitialPerToken = 0.05 } }).Guard);
        Assert.Equal(0.05, SpecConversion.ToProto(new RunSpec { Guard = new() { MaxKlInitialPerToken = 0.05 } }).Guard.MaxKlInitialPerToken);
        // An unset max_score_entropy is 1 (never trips), not proto3's 0, which would trip on every round.
        Assert.Equal(1, SpecConversion.FromProto(new V1.RunSpec { Guard = new V1.GuardSpec { Enabled = true } }).Guard.MaxScoreEntropy);
        Assert.Equal(0.4, SpecConversion.FromProto(new V1.RunSpec { Guard = new V1.GuardSpec { MaxScoreEntropy = 0.4 } }).Guard.MaxScoreEntropy);
        // So is an unset max_score_entropy_rise (0, a margin the guard can be given, would trip on any rise at all).
        Assert.Equal(1, SpecConversion.FromProto(new V1.RunSpec { Guard = new V1.GuardSpec { Enabled = true } }).Guard.MaxScoreEntropyRise);
        Assert.Equal(0, SpecConversion.FromProto(new V1.RunSpec { Guard = new V1.GuardSpec { MaxScoreEntropyRise = 0 } }).Guard.MaxScoreEntropyRise);
    }
}
