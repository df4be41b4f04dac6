using OnlineAlign.Contracts;
using OnlineAlign.Execution.Files;
using OnlineAlign.Execution.InProcess;
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

    /// <summary>A tiny model saved in a root, a link to it, and a copy outside every root the link can be swapped to.</summary>
    private sealed record Swappable(string Root, string Inside, string Outside, string Link)
    {
        public static Swappable Make(string name)
        {
            string root = RepositoryPaths.NewTempFolder($"{name}-root"), outside = RepositoryPaths.NewTempFolder($"{name}-outside");
            string inside = Path.Combine(root, "policy"), link = Path.Combine(root, "model");
            using (var tiny = BuiltinModels.Create(BuiltinModels.Tiny, 1))
                foreach (var folder in new[] { inside, outside }) HfCheckpoint.Save(tiny, folder, new ByteTokenizer().HfFiles());
            Directory.CreateSymbolicLink(link, inside);
            return new(root, inside, outside, link);
        }

        public void PointAt(string target)
        {
            new FileInfo(Link).Delete();
            Directory.CreateSymbolicLink(Link, target);
        }
    }

    [Fact]
    public void AGpuSilosPlanReadsTheSpecsFilesOnlyUnderItsReadRoots()
    {
        var files = Swappable.Make("plan");
        var settings = new OnlineAlign.Grains.Workers.WorkerSettings("cpu", RepositoryPaths.NewTempFolder("plan-cache"), new DataRoots([files.Root]),
            SpecLimits.Default);
        var spec = new RunSpec { Device = "cpu", Model = new ModelSpec { HfFolder = files.Link } };
        var device = settings.Budget(spec)!;
        Assert.NotEqual("", OnlineAlign.Grains.Workers.SpecPlans.Describe(spec, settings)); // checked and read inside the root
        Assert.True(OnlineAlign.Grains.Workers.SpecPlans.Peak(spec, settings) > 0);

        // Swapped out of the root after the check: the read that follows is refused, so there is no plan.
        files.PointAt(files.Outside);
        Assert.Equal("", OnlineAlign.Grains.Workers.SpecPlans.DescribeChecked(spec, device, settings));
        Assert.Equal(0, OnlineAlign.Grains.Workers.SpecPlans.PeakChecked(spec, device, settings));
        Assert.NotNull(OnlineAlign.Execution.Specs.RunSpecMapping.Plan(spec, device.Cpu, device.Bytes)); // unconfined, the same read succeeds
        Assert.Equal("", OnlineAlign.Grains.Workers.SpecPlans.Describe(spec, settings)); // and the next check refuses it by path
        using (settings.ConfineReads())
            Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(files.Link).Dispose());
    }

    [Fact]
    public void AnInProcessRunReadsItsSpecsFilesOnlyAsTheyResolvedWhenItWasCreated()
    {
        var files = Swappable.Make("in-process");
        // As in a Hugging Face cache, the weights are a link to a blob outside the folder: pinned with the folder, so read.
        string blobs = RepositoryPaths.NewTempFolder("in-process-blobs"), blob = Path.Combine(blobs, "weights");
        File.Move(Path.Combine(files.Inside, HfCheckpoint.WeightsFile), blob);
        File.CreateSymbolicLink(Path.Combine(files.Inside, HfCheckpoint.WeightsFile), blob);
        RunSpec Spec() => new()
        {
            Device = "cpu", Rounds = 1, PromptsPerRound = 4, SamplesPerPrompt = 2, Model = new ModelSpec { HfFolder = files.Link },
            Prompts = new() { Task = "sort", EvalPrompts = 4 }, Sampling = new() { MaxNewTokens = 4 }, Judge = new() { Kind = "verifier" },
        };
        using (var run = new InProcessRun(Spec(), RepositoryPaths.NewTempFolder("in-process-run"), pretrainedCache: RepositoryPaths.PretrainedCache))
            Assert.True(run.Prepare().Metrics.ContainsKey("eval/accuracy"));

        // Created (its files checked and pinned) with the link inside; swapped out before the load: refused on the open handle.
        using var swapped = new InProcessRun(Spec(), RepositoryPaths.NewTempFolder("in-process-swapped"), pretrainedCache: RepositoryPaths.PretrainedCache);
        files.PointAt(files.Outside);
        var refused = Assert.Throws<InvalidDataException>(() => swapped.Prepare());
        Assert.Contains("is not under the files its spec named", refused.Message);
        Assert.Contains(files.Link, refused.Message);
        // A run created now pins the outside folder: its spec named it, and there are no data roots in one process.
        using var now = new InProcessRun(Spec(), RepositoryPaths.NewTempFolder("in-process-now"), pretrainedCache: RepositoryPaths.PretrainedCache);
        now.Prepare();
    }

    [Fact]
    public void ACommandLinesModelFolderSwappedAfterTheCommandStartedIsRefused()
    {
        var files = Swappable.Make("command");
        using (OnlineAlign.Cli.Commands.CommandFiles.Confine(files.Link, null))
        {
            using (HfCheckpoint.Load(files.Link)) { }
            files.PointAt(files.Outside);
            var refused = Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(files.Link).Dispose());
            Assert.Contains("is not under the folders named on the command line", refused.Message);
            Assert.Throws<InvalidDataException>(() => OnlineAlign.Cli.Commands.CommandFiles.Load(() => HfCheckpoint.Load(files.Inside), files.Outside).Dispose());
        }
        using (HfCheckpoint.Load(files.Link)) { } // the scope ended: unconfined again
    }
}
