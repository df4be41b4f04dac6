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
    public static string SiloDll
    {
        get
        {
            string configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
            return Path.Combine(Root, "src", "OnlineAlign.Silo", "bin", configuration, "net10.0", "OnlineAlign.Silo.dll");
        }
    }

    /// <summary>The built CLI (onlinealign.dll) next to the test build (same configuration).</summary>
    public static string CliDll
    {
        get
        {
            string configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
            return Path.Combine(Root, "src", "OnlineAlign.Cli", "bin", configuration, "net10.0", "onlinealign.dll");
        }
    }

    public static string NewTempFolder(string prefix)
    {
        string path = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }
}
