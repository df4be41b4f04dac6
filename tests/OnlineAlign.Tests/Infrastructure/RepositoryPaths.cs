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

    public static string NewTempFolder(string prefix)
    {
        string path = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }
}
