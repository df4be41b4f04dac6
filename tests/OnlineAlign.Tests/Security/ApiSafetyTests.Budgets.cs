using OnlineAlign.Silo.Api;
using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Security;

/// <summary>A built-in model's spec is checked on the GPU silo too (memory plan, token budget with its prompts), not only a model folder's.</summary>
public partial class ApiSafetyTests
{
    [Fact]
    public async Task ABuiltInModelsSpecIsCheckedOnTheGpuSiloWithItsPromptsCounted()
    {
        var spec = LocalTestCluster.SmallSpec(rounds: 1);
        var contract = SpecConversion.FromProto(spec);
        var (generated, judged, trained, _) = OnlineAlign.Execution.Specs.RunSpecMapping.RoundTokens(contract, 0);
        long evaluated = OnlineAlign.Execution.Specs.RunSpecMapping.EvaluationTokens(contract, 0);
        // Within budget without prompt tokens (the API silo's own check passes it); over once the GPU silo counts the prompts.
        spec.Budget = new BudgetSpec { MaxTokensPerRound = generated + judged + trained + evaluated };
        string refusal = await Refused(spec);
        Assert.Matches(@"budget\.max_tokens_per_round is \d+, but a round of this spec may cost \d+ tokens: prompts_per_round 48 x samples_per_prompt 4 x \(prompt [1-9]", refusal);

        // A budget the round fits exactly, its prompts counted, but not the evaluation after it: refused naming prompts.eval_prompts.
        var counted = System.Text.RegularExpressions.Regex.Match(refusal, @"may cost (\d+) tokens: .* = (\d+) evaluated; ");
        Assert.True(counted.Success, refusal);
        long total = long.Parse(counted.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        long evaluation = long.Parse(counted.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        spec.Budget = new BudgetSpec { MaxTokensPerRound = total - evaluation };
        string evaluationRefused = await Refused(spec);
        Assert.Contains($"budget.max_tokens_per_round is {total - evaluation}, but a round of this spec may cost {total} tokens: ", evaluationRefused);
        Assert.Contains($"prompts.eval_prompts 32 x 5 passes (a greedy and a sampled decode, the sample scored by the policy, the reference and the initial model) = {evaluation} evaluated",
            evaluationRefused);
    }
}
