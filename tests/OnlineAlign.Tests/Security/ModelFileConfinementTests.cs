using OnlineAlign.Contracts;
using OnlineAlign.Execution.Files;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Specs;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Security;

/// <summary>
/// model.base_folder (M0) and model.hf_folder are checked by path (SpecFiles) before a phase and read by a loader that
/// resolves the path again: a worker's phase job confines every model file it opens to its read roots, checked on the
/// open handle, so a link swapped in between cannot lead the read out of the data roots.
/// </summary>
public class ModelFileConfinementTests
{
    [Fact]
    public void ABaseFolderLinkSwappedAfterTheSpecCheckIsRefusedOnTheOpenHandle()
    {
        string root = RepositoryPaths.NewTempFolder("confined-root");
        string outside = RepositoryPaths.NewTempFolder("outside-root");
        string policy = Path.Combine(root, "policy"), m0 = Path.Combine(root, "m0");
        using (var tiny = BuiltinModels.Create(BuiltinModels.Tiny, 1))
            foreach (var folder in new[] { policy, m0, outside })
                HfCheckpoint.Save(tiny, folder, new ByteTokenizer().HfFiles());
        string link = Path.Combine(root, "base");
        Directory.CreateSymbolicLink(link, m0);
        var roots = new DataRoots([root]);
        var spec = new RunSpec { Model = new ModelSpec { HfFolder = policy, BaseFolder = link } };
        Assert.Empty(SpecFiles.Problems(spec, roots, SpecLimits.Default)); // the check: the link leads inside the root

        // Between the check and the read, the link is pointed out of the root.
        new FileInfo(link).Delete();
        Directory.CreateSymbolicLink(link, outside);
        using (ModelFile.ConfineTo(roots.Roots))
        {
            var refused = Assert.Throws<InvalidDataException>(() => RoundJob.BeforeWarmStart(spec, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache));
            Assert.Contains("is not under this silo's data roots", refused.Message);
            Assert.Contains(link, refused.Message);
        }
        // What the scope refused is a real read: without it the same call loads the outside folder.
        using (var escaped = RoundJob.BeforeWarmStart(spec, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache)) Assert.NotNull(escaped);
        // The path check refuses it too, once it runs again (the next phase's check).
        Assert.Contains($"model.base_folder '{link}' is not under this silo's data roots", Assert.Single(SpecFiles.Problems(spec, roots, SpecLimits.Default)));

        // Pointed back inside, it loads under the scope; the scope ends with its using block.
        new FileInfo(link).Delete();
        Directory.CreateSymbolicLink(link, m0);
        using (ModelFile.ConfineTo(roots.Roots))
        using (var inside = RoundJob.BeforeWarmStart(spec, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache))
            Assert.NotNull(inside);
        using (ModelFile.ConfineTo([outside])) Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(policy).Dispose());
        using (HfCheckpoint.Load(policy)) { } // unconfined again
    }

    [Fact]
    public void AWorkersReadRootsAreItsDataRootsAndItsOwnCacheFolders()
    {
        string data = RepositoryPaths.NewTempFolder("worker-data"), cache = RepositoryPaths.NewTempFolder("worker-cache");
        var settings = new OnlineAlign.Grains.Workers.WorkerSettings("cpu", cache, new DataRoots([data]), SpecLimits.Default)
            { PretrainedCache = Path.Combine(data, "m0") };
        Assert.Equal([DataRoots.RealPath(data), DataRoots.RealPath(cache), DataRoots.RealPath(Path.Combine(data, "m0"))], settings.ReadRoots);
        Assert.Equal(Path.Combine(cache, "m0"), new OnlineAlign.Grains.Workers.WorkerSettings("cpu", cache, new DataRoots([data]), SpecLimits.Default).PretrainedCache);
    }
}
