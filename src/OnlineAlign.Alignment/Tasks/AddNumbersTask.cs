using System.Globalization;

namespace OnlineAlign.Alignment.Tasks;

/// <summary>"add 23+45=" → "68": two numbers below 100.</summary>
public sealed class AddNumbersTask : TaskBase
{
    public override string Name => "add";

    protected override PromptItem Make(Random random)
    {
        int a = random.Next(0, 100), b = random.Next(0, 100);
        return new PromptItem($"add {a}+{b}=", (a + b).ToString(CultureInfo.InvariantCulture));
    }

    protected override string Corrupt(string answer, Random random) =>
        (int.Parse(answer, CultureInfo.InvariantCulture) + (random.Next(2) == 0 ? 1 : -1) * random.Next(1, 11)).ToString(CultureInfo.InvariantCulture);
}
