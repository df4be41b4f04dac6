using OnlineAlign.Contracts;

namespace OnlineAlign.Tests.Serving;

/// <summary>
/// A served round's grain key ("RUN@N:sha256") names its run, round and checkpoint, and nothing else parses as one: a run
/// id that could not be a run's, a round that is not a plain number, or a key without its checkpoint hash.
/// </summary>
public class ServedRoundKeysTests
{
    [Fact]
    public void AKeyNamesItsRunRoundAndCheckpointAndOnlyAValidOneParses()
    {
        Assert.Equal("run-1.a@12", ServedRoundKeys.Name("run-1.a", 12));
        Assert.Equal("run-1.a@12:ab12", ServedRoundKeys.Of("run-1.a", 12, "ab12"));
        Assert.Equal(("run-1.a", 12, "ab12"), ServedRoundKeys.Parse(ServedRoundKeys.Of("run-1.a", 12, "ab12")));
        Assert.Equal(("r", 0, ""), ServedRoundKeys.Parse("r@0:"));
        foreach (string key in new[] { "run", "run#gen1", "run@1", "@1:ab", "../x@1:ab", ".x@1:ab", "a b@1:ab", "run@-1:ab", "run@+1:ab", "run@1x:ab",
                     "run@:ab", "run:ab@1", "run@99999999999:ab" })
            Assert.Null(ServedRoundKeys.Parse(key));
    }
}
