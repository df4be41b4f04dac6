using System.Globalization;
using OnlineAlign.Silo.Api;
using OnlineAlign.Specs;
using System.Text.Json;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Tests.Infrastructure;
using V1 = OnlineAlign.Api.V1;

namespace OnlineAlign.Tests.Specs;

/// <summary>One owner of a spec's defaults: every other place that states one must agree with it.</summary>
public class SpecDefaultsTests
{
    [Fact]
    public void RoundSettingsAndWarmStartDefaultsAreTheRunSpecsDefaults()
    {
        var fromSpec = RunSpecMapping.ToRoundSettings(new RunSpec());
        Assert.Equal(JsonSerializer.Serialize(new RoundSettings()), JsonSerializer.Serialize(fromSpec));
        Assert.Equal(new RunSpec().SftSteps, new WarmStart.Settings().Steps);
        Assert.Equal(new RunSpec().SftNoise, new WarmStart.Settings().Noise);
        Assert.Equal(new RunSpec().SftLearningRate, new WarmStart.Settings().LearningRate);
        Assert.Equal(new RunSpec().EftExamples, new WarmStart.Settings().JudgeExamples);
        Assert.Equal(RunSpecMapping.JudgeTemplate(new RunSpec()), new WarmStart.Settings().JudgeTemplate);
    }

    /// <summary>
    /// Each role file states every limit (a misspelt key would be ignored silently by the configuration binder),
    /// with the value the code falls back to, and silos/README.md lists them all.
    /// </summary>
    [Theory]
    [InlineData("all"), InlineData("control"), InlineData("gpu")]
    public void EveryRoleFileStatesEveryLimitWithItsDefault(string role)
    {
        var limits = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "silos", role + ".json"))).RootElement.GetProperty("Limits");
        var properties = typeof(SpecLimits).GetProperties().Where(p => p.CanWrite).ToList();
        Assert.Equal(properties.Select(p => p.Name).Order(), limits.EnumerateObject().Select(p => p.Name).Order());
        string readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "silos", "README.md"));
        foreach (var property in properties)
        {
            if (property.PropertyType == typeof(string)) // a list of names, not a number (RemoteJudgeAllowedHosts); unset is ""
                Assert.Equal((string?)property.GetValue(SpecLimits.Default) ?? "", limits.GetProperty(property.Name).GetString());
            else
                Assert.Equal(Convert.ToDouble(property.GetValue(SpecLimits.Default), CultureInfo.InvariantCulture), limits.GetProperty(property.Name).GetDouble());
            Assert.Contains($"| `{property.Name}` |", readme);
        }
    }

    [Fact]
    public void AnEmptyWireSpecMeansTheDefaultSpec() =>
        Assert.Equal(new RunSpec(), SpecConversion.FromProto(new V1.RunSpec()));

    [Fact]
    public void TheProtosDefaultCommentsStateTheSpecsDefaults()
    {
        var defaults = SpecConversion.ToProto(new RunSpec { Model = new() { Lora = new LoraSpec() }}); // LoRA is off by default; its own fields have defaults
        string? message = null;
        int checkedFields = 0;
        foreach (var line in File.ReadLines(Path.Combine(RepositoryPaths.Root, "protos", "onlinealign", "v1", "runs.proto")))
        {
            if (Regex.Match(line, @"^message (\w+) \{") is { Success: true } m) message = m.Groups[1].Value;
            var field = Regex.Match(line, @"optional \S+ (\w+) = \d+;\s*// default ([^;]+?)(;|$)");
            if (!field.Success || message is null) continue;
            string path = message == "RunSpec" ? field.Groups[1].Value : $"{Parent(message)}.{field.Groups[1].Value}";
            AssertSame(path, field.Groups[2].Value.Trim(), defaults, "runs.proto");
            checkedFields++;
        }
        Assert.True(checkedFields >= 30, $"only {checkedFields} defaults found in runs.proto");
    }

    [Fact]
    public void TheReadmesSpecTableStatesTheSpecsDefaults()
    {
        var defaults = SpecConversion.ToProto(new RunSpec { Model = new() { Lora = new LoraSpec() }});
        int checkedFields = 0;
        var lines = File.ReadLines(Path.Combine(RepositoryPaths.Root, "docs", "spec.md"))
            .SkipWhile(l => l != "## Fields and defaults").Skip(1).TakeWhile(l => !l.StartsWith("## ", StringComparison.Ordinal));
        foreach (var line in lines)
        {
            var row = Regex.Match(line, @"^\| `([a-z_.]+)` \| ([^|]+) \|");
            if (!row.Success) continue;
            AssertSame(row.Groups[1].Value, row.Groups[2].Value.Trim(), defaults, "docs/spec.md");
            checkedFields++;
        }
        Assert.True(checkedFields >= 30, $"only {checkedFields} defaults found in docs/spec.md's spec table");
    }

    /// <summary>The path of the RunSpec field whose message type is the given one (SamplingSpec: sampling; LoraSpec: model.lora).</summary>
    private static string Parent(string messageType) => PathTo(V1.RunSpec.Descriptor, messageType)
        ?? throw new Xunit.Sdk.XunitException($"no RunSpec field has type {messageType}");

    private static string? PathTo(MessageDescriptor parent, string messageType)
    {
        foreach (var f in parent.Fields.InDeclarationOrder().Where(f => f.FieldType == FieldType.Message))
            if (f.MessageType.Name == messageType) return f.Name;
            else if (PathTo(f.MessageType, messageType) is { } below) return $"{f.Name}.{below}";
        return null;
    }

    private static void AssertSame(string path, string stated, V1.RunSpec defaults, string where)
    {
        IMessage message = defaults;
        var parts = path.Split('.');
        foreach (var part in parts[..^1])
            message = (IMessage)message.Descriptor.FindFieldByName(part).Accessor.GetValue(message);
        var field = message.Descriptor.FindFieldByName(parts[^1]) ?? throw new Xunit.Sdk.XunitException($"{where}: no field '{path}'");
        object actual = field.Accessor.GetValue(message);
        bool same = actual switch
        {
            double d => double.Parse(stated, System.Globalization.CultureInfo.InvariantCulture) == d,
            bool b => bool.Parse(stated) == b,
            _ => string.Equals(Convert.ToString(actual, System.Globalization.CultureInfo.InvariantCulture), stated, StringComparison.Ordinal),
        };
        Assert.True(same, $"{where} says {path} defaults to {stated}; the spec's default is {actual}");
    }
}
