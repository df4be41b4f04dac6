using OnlineAlign.Cli.Client;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.EndToEnd;

public class SpecFileTests
{
    private static string Write(string json)
    {
        string file = Path.Combine(RepositoryPaths.NewTempFolder("spec"), "spec.json");
        File.WriteAllText(file, json);
        return file;
    }

    [Theory]
    [InlineData("""{"rounds": "three"}""", "field 'rounds' must be an integer, got \"three\"")]
    [InlineData("""{"loss": {"beta": "x"}}""", "field 'loss.beta' must be a number, got \"x\"")]
    [InlineData("""{"optimizer": {"carry_state": 1}}""", "field 'optimizer.carry_state' must be true or false, got 1")]
    [InlineData("""{"judge": {"kind": 5}}""", "field 'judge.kind' must be a string, got 5")]
    [InlineData("""{"lossy": {}}""", "field 'lossy' is not a field of RunSpec")]
    [InlineData("""{"rounds": 2,""", "not valid JSON")]
    public void WrongSpecFilesNameTheFileAndTheField(string json, string expected)
    {
        string file = Write(json);
        var error = Assert.Throws<InvalidDataException>(() => SpecFile.Load(file));
        Assert.Contains(file, error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void ASpecFileReadsSnakeAndCamelCase()
    {
        var spec = SpecFile.Load(Write("""{"rounds": 2, "samples_per_prompt": 6, "loss": {"beta": 0.2}, "optimizer": {"carryState": true}, "seed": "7", "sampling": {"batch_size": 128}}"""));
        Assert.Equal(128, spec.Sampling.BatchSize);
        Assert.Equal(2, spec.Rounds);
        Assert.Equal(6, spec.SamplesPerPrompt);
        Assert.Equal(0.2, spec.Loss.Beta);
        Assert.True(spec.Optimizer.CarryState);
        Assert.Equal(7UL, spec.Seed);
    }
}
