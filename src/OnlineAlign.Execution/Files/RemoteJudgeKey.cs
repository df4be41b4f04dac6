using OnlineAlign.Specs;

namespace OnlineAlign.Execution.Files;

/// <summary>
/// A remote judge's API key, read on the worker silo at the moment it is needed and held only in memory: the spec
/// names the environment variable (judge.api_key_env) or the file under the data roots (judge.api_key_file, checked
/// like every spec file), never the key, so neither the spec, the run's state nor a phase output can leak it.
/// </summary>
public static class RemoteJudgeKey
{
    public const int MaxFileBytes = 4096;

    /// <summary>The refusal of a judge.api_key_env that this silo does not have (or has empty); null otherwise.</summary>
    public static string? VariableProblem(JudgeSpec judge) =>
        judge.Kind == "remote" && !string.IsNullOrEmpty(judge.ApiKeyEnv) && string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(judge.ApiKeyEnv))
            ? $"judge.api_key_env '{judge.ApiKeyEnv}' is not set (or empty) on the worker silo {Environment.MachineName}"
            : null;

    /// <summary>The key, or null where the spec names none (an endpoint without authentication).</summary>
    public static string? Read(JudgeSpec judge, DataRoots roots)
    {
        if (VariableProblem(judge) is { } unset) throw new SpecFileException(unset);
        if (!string.IsNullOrEmpty(judge.ApiKeyEnv)) return Environment.GetEnvironmentVariable(judge.ApiKeyEnv)!.Trim();
        if (string.IsNullOrEmpty(judge.ApiKeyFile)) return null;
        string real = roots.Resolve("judge.api_key_file", judge.ApiKeyFile);
        if (!DataRoots.IsRegularFile(real) || new FileInfo(real).Length > MaxFileBytes)
            throw new SpecFileException($"judge.api_key_file '{judge.ApiKeyFile}' is not a regular file of at most {MaxFileBytes} bytes");
        string key = File.ReadAllText(real).Trim();
        // The content is never quoted: it is the key.
        return key.Length > 0 && !key.Any(char.IsControl) ? key
            : throw new SpecFileException($"judge.api_key_file '{judge.ApiKeyFile}' is empty or holds more than one line");
    }
}
