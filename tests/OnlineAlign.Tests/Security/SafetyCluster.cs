using System.Globalization;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Security;

/// <summary>
/// A control silo (the API) and a GPU silo with different data roots, as on two machines: spec files must be
/// checked where they are read. Each silo runs in its own working folder, away from the test's (the client's).
/// Lower limits than the defaults, so a test can reach them: at most 2 runs in progress, prompt sets up to 4 KB.
/// </summary>
public sealed class SafetyCluster : IAsyncLifetime
{
    public LocalTestCluster Cluster { get; private set; } = null!;
    /// <summary>The GPU silo's only data root; spec files elsewhere are refused.</summary>
    public string DataRoot { get; } = RepositoryPaths.NewTempFolder("data-root");
    /// <summary>The silos' working folders: nothing may appear in them but their data folders.</summary>
    public string[] WorkingFolders { get; } = [RepositoryPaths.NewTempFolder("control-cwd"), RepositoryPaths.NewTempFolder("gpu-cwd")];
    public const int RunsInProgress = 2;
    public const int PromptFileBytes = 4096;

    public async Task InitializeAsync()
    {
        Cluster = await LocalTestCluster.StartAsync();
        var limits = new Dictionary<string, string>
        {
            ["Limits__RunsInProgress"] = RunsInProgress.ToString(CultureInfo.InvariantCulture), ["Limits__PromptFileBytes"] = PromptFileBytes.ToString(CultureInfo.InvariantCulture),
        };
        // The control silo's roots hold nothing: had it checked the files itself, every file spec would be refused.
        string controlRoot = RepositoryPaths.NewTempFolder("control-root");
        await Cluster.AddSiloAsync("control", new Dictionary<string, string>(limits)
        {
            ["Silo__DataRoots__0"] = controlRoot, ["Silo__DataRoots__1"] = controlRoot, ["Silo__DataFolder"] = ".onlinealign",
        }, workingDirectory: WorkingFolders[0]);
        await Cluster.AddSiloAsync("gpu", new Dictionary<string, string>(limits)
        {
            ["Silo__DataRoots__0"] = DataRoot, ["Silo__DataRoots__1"] = DataRoot, ["Silo__DataFolder"] = ".onlinealign",
        }, workingDirectory: WorkingFolders[1]);
    }

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}
