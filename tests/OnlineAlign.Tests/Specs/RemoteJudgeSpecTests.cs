using OnlineAlign.Contracts;
using OnlineAlign.Execution.Files;
using OnlineAlign.Silo.Api;
using OnlineAlign.Specs;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Specs;

/// <summary>judge.kind remote's fields: bounds, the endpoint as an attacker would fill it, and where the key may come from.</summary>
public class RemoteJudgeSpecTests
{
    private static JudgeSpec Remote(string endpoint = "https://judge.example/v1") => new() { Kind = "remote", Endpoint = endpoint, RemoteModel = "m" };

    private static IReadOnlyList<string> Problems(JudgeSpec judge) => judge.Problems(SpecLimits.Default);

    [Fact]
    public void EachNumberHasItsBoundsNamedByField()
    {
        Assert.Empty(Problems(Remote()));
        var below = Problems(Remote() with { Concurrency = 0, TimeoutSeconds = 0, MaxAttempts = 0, Temperature = -0.1 });
        Assert.Contains("judge.concurrency must be between 1 and 256, got 0", below);
        Assert.Contains("judge.timeout_seconds must be between 1 and 3600, got 0", below);
        Assert.Contains("judge.max_attempts must be between 1 and 20, got 0", below);
        Assert.Contains("judge.temperature must be >= 0, got -0.1", below);
        var above = Problems(Remote() with { Concurrency = 257, TimeoutSeconds = 3601, MaxAttempts = 21, Temperature = double.NaN });
        Assert.Contains("judge.concurrency must be between 1 and 256, got 257", above);
        Assert.Contains("judge.timeout_seconds must be between 1 and 3600, got 3601", above);
        Assert.Contains("judge.max_attempts must be between 1 and 20, got 21", above);
        Assert.Contains("judge.temperature must be a finite number, got NaN", above);
    }

    [Theory]
    [InlineData("", "judge.endpoint is required")]
    [InlineData("ftp://judge.example/v1", "is not an absolute http or https URL")]
    [InlineData("file:///etc/passwd", "is not an absolute http or https URL")]
    [InlineData("/v1", "is not an absolute http or https URL")]
    [InlineData("https://user:sk-secret@judge.example/v1", "judge.endpoint carries a user name or password")]
    [InlineData("https://judge.example/v1?api_key=sk-secret", "judge.endpoint has a query or fragment")]
    public void AnEndpointThatIsNotAPlainBaseUrlIsRefused(string endpoint, string expected)
    {
        var problems = Problems(Remote(endpoint));
        Assert.Contains(problems, p => p.Contains(expected));
        Assert.DoesNotContain(problems, p => p.Contains("sk-secret")); // a key put where it must not be is not echoed back
    }

    [Fact]
    public void AKeyGoesOverPlainHttpOnlyToLoopback()
    {
        Assert.Contains("judge.endpoint 'http://judge.example' is plain http off loopback: the API key would be sent in clear text; use https",
            Problems(Remote("http://judge.example/v1") with { ApiKeyEnv = "JUDGE_KEY" }));
        Assert.Contains(Problems(Remote("http://10.0.0.5:8000/v1") with { ApiKeyFile = "/keys/judge" }), p => p.Contains("plain http off loopback"));
        Assert.Empty(Problems(Remote("http://127.0.0.1:8000/v1") with { ApiKeyEnv = "JUDGE_KEY" }));
        Assert.Empty(Problems(Remote("http://[::1]:8000/v1") with { ApiKeyEnv = "JUDGE_KEY" }));
        Assert.Empty(Problems(Remote("http://judge.internal:8000/v1"))); // no key, nothing to leak
        Assert.Empty(Problems(Remote("https://judge.example/v1") with { ApiKeyEnv = "JUDGE_KEY" }));
    }

    [Fact]
    public void TheKeyIsNamedNeverGivenAndFromOnePlace()
    {
        var key = Problems(Remote() with { ApiKeyEnv = "sk-proj-abcdef" });
        Assert.Contains(key, p => p.StartsWith("judge.api_key_env 'sk-proj-abcdef' is not an environment variable name", StringComparison.Ordinal) && p.Contains("it names the variable, it is not the key"));
        Assert.Contains("judge.api_key_env and judge.api_key_file are both set: name one place for the key",
            Problems(Remote() with { ApiKeyEnv = "K", ApiKeyFile = "/k" }));
        Assert.Contains(Problems(Remote() with { RemoteModel = null }), p => p.StartsWith("judge.remote_model is required", StringComparison.Ordinal));
        Assert.Contains(Problems(Remote() with { Template = "compact" }), p => p.StartsWith("judge.template 'compact'", StringComparison.Ordinal));
        Assert.Equal("rubric", Remote().RemoteTemplate());
        // The fields of another kind are not required.
        Assert.Empty(Problems(new JudgeSpec()));
    }

    [Fact]
    public void TheKeyFileIsConfinedToTheDataRootsAndTheVariableMustBeSetOnTheWorker()
    {
        string root = RepositoryPaths.NewTempFolder("keys"), outside = RepositoryPaths.NewTempFolder("outside");
        var roots = new DataRoots([root]);
        string keyFile = Path.Combine(root, "judge.key");
        File.WriteAllText(keyFile, "sk-test-123\n");
        var spec = new RunSpec { Judge = Remote() with { ApiKeyFile = keyFile } };
        Assert.Empty(SpecFiles.Problems(spec, roots, SpecLimits.Default));
        Assert.Equal("sk-test-123", RemoteJudgeKey.Read(spec.Judge, roots));

        string escaped = Path.Combine(outside, "judge.key");
        File.WriteAllText(escaped, "sk-test-123");
        Assert.Contains(SpecFiles.Problems(spec with { Judge = spec.Judge with { ApiKeyFile = escaped } }, roots, SpecLimits.Default),
            p => p.StartsWith($"judge.api_key_file '{escaped}' is not under this silo's data roots", StringComparison.Ordinal));
        File.WriteAllText(keyFile, new string('k', RemoteJudgeKey.MaxFileBytes + 1));
        Assert.Contains(SpecFiles.Problems(spec, roots, SpecLimits.Default), p => p.StartsWith($"judge.api_key_file '{keyFile}' is 4097 bytes; the limit is 4096", StringComparison.Ordinal));

        string variable = "ONLINEALIGN_TEST_UNSET_" + Guid.NewGuid().ToString("N");
        var unset = spec with { Judge = Remote() with { ApiKeyEnv = variable } };
        Assert.Contains(SpecFiles.Problems(unset, roots, SpecLimits.Default), p => p.StartsWith($"judge.api_key_env '{variable}' is not set", StringComparison.Ordinal));
        Assert.Throws<SpecFileException>(() => RemoteJudgeKey.Read(unset.Judge, roots));
        Environment.SetEnvironmentVariable(variable, " sk-env-456 ");
        try { Assert.Equal("sk-env-456", RemoteJudgeKey.Read(unset.Judge, roots)); }
        finally { Environment.SetEnvironmentVariable(variable, null); }
    }

    [Fact]
    public void TheFieldsCrossTheGrpcEdgeAndBack()
    {
        var spec = new RunSpec
        {
            Judge = Remote("http://127.0.0.1:9/v1") with
            {
                ApiKeyEnv = "JUDGE_KEY", Concurrency = 3, TimeoutSeconds = 9, MaxAttempts = 2, Temperature = 0.25, Template = "rate {prompt} {response}",
            },
        };
        Assert.Equal(spec.Judge, SpecConversion.FromProto(SpecConversion.ToProto(spec)).Judge);
    }
}
