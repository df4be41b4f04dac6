using OnlineAlign.Contracts;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Modeling;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Alignment;

/// <summary>The built-in models a spec names with model.builtin (docs/spec.md), and what sets them apart.</summary>
public class BuiltinModelTests
{
    [Fact]
    public void SmallIsAFewMillionParametersOverTinysVocabularyAndContext()
    {
        var tiny = BuiltinModels.ByName("tiny");
        var small = BuiltinModels.ByName("small");
        Assert.InRange(tiny.ParameterCount(), 700_000, 1_000_000);
        Assert.InRange(small.ParameterCount(), 4_000_000, 5_000_000);
        Assert.Equal(tiny.VocabSize, small.VocabSize);       // the byte tokenizer
        Assert.Equal(tiny.MaxPositions, small.MaxPositions); // the compact judge template fits both
        using var model = BuiltinModels.Create(small, 3);
        Assert.Equal(small.ParameterCount(), model.parameters().Sum(p => p.numel()));
        using var ids = tensor(new long[] { 1, 40, 41, 42 }).unsqueeze(0);
        using var logits = model.forward(ids);
        Assert.Equal(new long[] { 1, 4, small.VocabSize }, logits.shape);
    }

    [Fact]
    public void ASpecNamesSmallAndAnUnknownNameIsRefusedListingTheBuiltInModels()
    {
        Assert.Empty(RunSpecMapping.Problems(new RunSpec { Model = new() { Builtin = "small" } }));
        var problems = RunSpecMapping.Problems(new RunSpec { Model = new() { Builtin = "medium" } });
        Assert.Contains(problems, p => p.Contains("model.builtin", StringComparison.Ordinal) && p.Contains("tiny, small", StringComparison.Ordinal));
    }
}
