namespace OnlineAlign.Tests.Infrastructure;

public static class RepositoryPaths
{
    /// <summary>The repository root: the folder above the tests that holds OnlineAlign.sln.</summary>
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "OnlineAlign.sln"))) return dir.FullName;
            throw new DirectoryNotFoundException("OnlineAlign.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Fixture(params string[] parts) =>
        Path.Combine([AppContext.BaseDirectory, "fixtures", .. parts]);

    /// <summary>The built silo host next to the test build (same configuration).</summary>
    public static string SiloDll => BuiltBeside("OnlineAlign.Silo", "OnlineAlign.Silo.dll");

    /// <summary>The built CLI (onlinealign.dll) next to the test build (same configuration).</summary>
    public static string CliDll => BuiltBeside("OnlineAlign.Cli", "onlinealign.dll");

    /// <summary>A project's output in the same configuration (Debug/Release) as this test build.</summary>
    private static string BuiltBeside(string project, string file)
    {
        string configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        return Path.Combine(Root, "src", project, "bin", configuration, "net10.0", file);
    }

    /// <summary>
    /// Where this test run's silos and in-process runs keep built-in runs' M0 (PretrainedBaseCache): shared within the test
    /// run, as a silo's is among its runs, so each seed's M0 is pretrained once per test run, not once per test.
    /// </summary>
    public static string PretrainedCache => Path.Combine(RunFolder.Value, "m0-cache");

    /// <summary>A new empty folder inside this test run's temporary folder.</summary>
    public static string NewTempFolder(string prefix)
    {
        string path = Path.Combine(RunFolder.Value, $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    // Checkpoints, Azurite data and silo folders add up to gigabytes a run: each run keeps them in one folder,
    // removed at process exit where the test runner lets the process finish (a full run's host is stopped before its
    // handler ends), and otherwise by the next run, which removes the folders of runs whose process is gone.
    private static readonly Lazy<string> RunFolder = new(() =>
    {
        foreach (var stale in Directory.EnumerateDirectories(Path.GetTempPath(), RunPrefix + "*"))
            if (int.TryParse(Path.GetFileName(stale)[RunPrefix.Length..], out int pid) && !IsRunning(pid)) TryDelete(stale);
        string folder = Path.Combine(Path.GetTempPath(), RunPrefix + Environment.ProcessId);
        Directory.CreateDirectory(folder);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(folder);
        return folder;
    });

    private const string RunPrefix = "onlinealign-tests-";

    private static bool IsRunning(int pid)
    {
        try { using var process = System.Diagnostics.Process.GetProcessById(pid); return !process.HasExited; }
        catch (ArgumentException) { return false; }
    }

    private static void TryDelete(string folder)
    {
        try { Directory.Delete(folder, recursive: true); }
        catch (IOException) { }                   // a silo still closing a file: the next run removes it
        catch (UnauthorizedAccessException) { }
    }
}
