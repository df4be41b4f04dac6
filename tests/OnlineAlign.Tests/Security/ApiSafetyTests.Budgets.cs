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
        // Within budget without prompt tokens (the API silo's own check passes it); over once the GPU silo counts the prompts.
        spec.Budget = new BudgetSpec { MaxTokensPerRound = generated + judged + trained };
        string refusal = await Refused(spec);
        Assert.Matches(@"budget\.max_tokens_per_round is \d+, but a round of this spec may cost \d+ tokens: prompts_per_round 48 x samples_per_prompt 4 x \(prompt [1-9]", refusal);
    }
}
