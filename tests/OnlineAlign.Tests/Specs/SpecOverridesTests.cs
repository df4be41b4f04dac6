using OnlineAlign.Api.V1;
using OnlineAlign.Execution.Forks;

namespace OnlineAlign.Tests.Specs;

/// <summary>A fork's --set path=value overrides: resolved against runs.proto's fields, typed, bounded, each problem naming its field.</summary>
public class SpecOverridesTests
{
    private static RunSpec Parent() => new()
    {
        Name = "parent", Rounds = 3, Seed = 7, Loss = new LossSpec { Kind = "dpo", Beta = 0.1 }, Model = new ModelSpec { Builtin = "tiny" },
    };

    [Fact]
    public void SetsTopLevelAndSectionFieldsOfEveryTypeAndLeavesTheRestAndTheParentAlone()
    {
        var parent = Parent();
        var (spec, problems) = SpecOverrides.Apply(parent,
            ["loss.beta=0.05", "judge.kind = llm", "rounds=2", "seed=18446744073709551615", "optimizer.carry_state=true", "retention.keep_last=2", "name=child"]);
        Assert.Empty(problems);
        Assert.Equal(0.05, spec.Loss.Beta);
        Assert.Equal("dpo", spec.Loss.Kind);
        Assert.Equal("llm", spec.Judge.Kind);              // a section the parent's wire spec did not have is created
        Assert.Equal(2, spec.Rounds);
        Assert.Equal(ulong.MaxValue, spec.Seed);
        Assert.True(spec.Optimizer.CarryState);
        Assert.Equal(2, spec.Retention.KeepLast);
        Assert.Equal("child", spec.Name);
        Assert.Equal("tiny", spec.Model.Builtin);
        Assert.Equal(Parent(), parent);                    // applied to a copy
        Assert.True(spec.Loss.HasBeta);                    // an optional field set, not left to its default
    }

    [Theory]
    [InlineData("loss.betta=0.05", "loss.betta: 'betta' is not a field of loss (fields: kind, beta,")]
    [InlineData("los.beta=0.05", "los.beta: 'los' is not a field of the run spec (fields: name, model,")]
    [InlineData("loss.beta=abc", "loss.beta must be a finite number, got 'abc'")]
    [InlineData("loss.beta=NaN", "loss.beta must be a finite number, got 'NaN'")]
    [InlineData("loss.beta=1e999", "loss.beta must be a finite number")]
    [InlineData("rounds=2.5", "rounds must be a whole number, got '2.5'")]
    [InlineData("rounds=99999999999", "rounds must be a whole number")]
    [InlineData("seed=-1", "seed must be a whole number >= 0, got '-1'")]
    [InlineData("optimizer.carry_state=yes", "optimizer.carry_state must be true or false, got 'yes'")]
    [InlineData("loss=dpo", "loss is a section; set one of its fields (loss.kind=...)")]
    [InlineData("rounds.x=1", "rounds.x: rounds is a value, not a section")]
    [InlineData("loss.beta", "'loss.beta' is not path=value")]
    [InlineData("=1", "'=1' is not path=value")]
    [InlineData("model.builtin=small", "model.builtin cannot be changed by a fork: the checkpoint it starts from fixes the model and its tokenizer")]
    [InlineData("model.lora.r=8", "model.lora.r cannot be changed by a fork")]
    [InlineData("model.chat_template=chatml", "model.chat_template cannot be changed by a fork")]
    [InlineData("sft_steps=10", "sft_steps cannot be changed by a fork: a fork starts from the parent's checkpoint and does not warm-start")]
    [InlineData("sft_learning_rate=0.001", "sft_learning_rate cannot be changed by a fork: a fork starts from the parent's checkpoint and does not warm-start")]
    public void ABadSettingIsRefusedNamingTheField(string setting, string expected)
    {
        var (_, problems) = SpecOverrides.Apply(Parent(), [setting]);
        Assert.Contains(expected, Assert.Single(problems));
    }

    [Fact]
    public void EveryBadSettingIsReportedAndAFieldSetTwiceIsRefused()
    {
        var (_, problems) = SpecOverrides.Apply(Parent(), ["loss.beta=x", "rounds=2", "rounds=3", "judge.nope=1"]);
        Assert.Equal(3, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("loss.beta", StringComparison.Ordinal));
        Assert.Contains("rounds is set twice", problems);
        Assert.Contains(problems, p => p.StartsWith("judge.nope", StringComparison.Ordinal));
    }

    [Fact]
    public void TheNumberAndLengthOfSettingsAreBounded()
    {
        var many = Enumerable.Range(0, SpecOverrides.MaxOverrides + 1).Select(i => $"rounds={i}").ToList();
        Assert.Contains($"33 overrides; the limit is {SpecOverrides.MaxOverrides}", Assert.Single(SpecOverrides.Apply(Parent(), many).Problems));
        string huge = "judge.template=" + new string('x', SpecOverrides.MaxLength);
        var problem = Assert.Single(SpecOverrides.Apply(Parent(), [huge]).Problems);
        Assert.Equal($"an override is {huge.Length} characters long; the limit is {SpecOverrides.MaxLength}", problem);
        Assert.DoesNotContain("xxxxxxxxxx", problem);        // a huge value is not echoed back
        Assert.Empty(SpecOverrides.Apply(Parent(), ["judge.template=" + new string('x', SpecOverrides.MaxLength - 15)]).Problems);
    }

    [Fact]
    public void AFullCheckpointIsCopiedAsItIsAndALoraRoundTakesItsBaseFromTheParentsRoundZero()
    {
        string[] full = ["config.json", "model.safetensors", "tokenizer.json", "onlinealign_state.json"];
        Assert.Equal(full.Select(n => (n, true)), ForkFiles.Select(["model.safetensors", "config.json"], full));

        string[] initial = ["adapter_config.json", "adapter_model.safetensors", "config.json", "model.safetensors", "model.safetensors.sha256", "onlinealign_state.json", "tokenizer.json"];
        string[] adapterOnly = ["adapter_config.json", "adapter_model.safetensors", "base_model.json", "config.json", "onlinealign_state.json", "optimizer.safetensors", "tokenizer.json"];
        Assert.True(ForkFiles.IsAdapterOnly(adapterOnly));
        Assert.False(ForkFiles.IsAdapterOnly(initial));
        var files = ForkFiles.Select(initial, adapterOnly);
        Assert.Equal(
        [
            ("adapter_config.json", true), ("adapter_model.safetensors", true), ("config.json", true), ("model.safetensors", false),
            ("model.safetensors.sha256", false), ("onlinealign_state.json", true), ("optimizer.safetensors", true), ("tokenizer.json", true),
        ], files);
    }
}
