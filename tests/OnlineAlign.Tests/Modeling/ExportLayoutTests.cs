using OnlineAlign.Specs;
using System.Text.Json.Nodes;
using OnlineAlign.Cli.Client;
using OnlineAlign.Cli.Commands;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Lora;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

/// <summary>
/// A LoRA run's exports as transformers + PEFT load them: round 0 a plain base (its adapter in adapter/), a later
/// round an adapter whose adapter_config.json names a base that exists on this machine (its base/ subfolder).
/// </summary>
public class ExportLayoutTests
{
    private static readonly Tensor Ids = tensor(new long[] { 3, 4, 5, 6, 7, 8, 9 }).unsqueeze(0);

    /// <summary>llama-tiny with a drawn (non-zero) adapter, as a LoRA round would hold it.</summary>
    private static DecoderLM Adapted(ulong seed) => AdaptedLlamaTiny.Adapted(AdaptedLlamaTiny.QueryValue, seed);

    private static string BaseName(string adapterFolder) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(adapterFolder, PeftAdapter.ConfigFile)))!["base_model_name_or_path"]!.GetValue<string>();

    [Fact]
    public void RoundZeroExportsAsAPlainBaseWithItsAdapterInASubfolder()
    {
        using var model = Adapted(3);
        string folder = RepositoryPaths.NewTempFolder("export-r0");
        PolicyCheckpoint.SaveBase(model, folder, "tiny", []);
        Assert.True(ExportLayout.IsLoraBase(folder));

        ExportLayout.SplitBase(folder, folder);

        Assert.False(File.Exists(Path.Combine(folder, PeftAdapter.ConfigFile)), "transformers would follow adapter_config.json instead of loading the folder");
        Assert.False(ExportLayout.IsLoraBase(folder));
        using var plain = HfCheckpoint.Load(folder);
        using (model.AdaptersOff())
            Assert.True(plain.forward(Ids).equal(model.forward(Ids)).all().item<bool>(), "the exported base is not the run's base");
        string adapter = Path.Combine(folder, ExportLayout.AdapterFolder);
        Assert.Equal(Path.GetFullPath(folder), BaseName(adapter));
        using var reloaded = PeftAdapter.Load(HfCheckpoint.Load(BaseName(adapter)), adapter);
        Assert.True(reloaded.forward(Ids).equal(model.forward(Ids)).all().item<bool>());
    }

    [Fact]
    public void LaterRoundNamesItsIncludedBaseAndMergesWithIt()
    {
        using var round0 = Adapted(3);
        string baseDownload = RepositoryPaths.NewTempFolder("export-base");
        PolicyCheckpoint.SaveBase(round0, baseDownload, "tiny", []);
        using var round2 = Adapted(11);
        string folder = RepositoryPaths.NewTempFolder("export-r2");
        PolicyCheckpoint.SaveAdapter(round2, folder, "tiny", baseDownload, []);
        Assert.Equal("tiny", BaseName(folder)); // what the silo writes: nothing a user's machine resolves

        ExportLayout.AttachBase(folder, folder, baseDownload);

        string named = BaseName(folder);
        Assert.True(Path.IsPathRooted(named), named);
        Assert.Equal(Path.Combine(Path.GetFullPath(folder), ExportLayout.BaseFolder), named);
        Assert.True(PolicyCheckpoint.HasWeights(named), $"{named} has no weights");
        Assert.False(File.Exists(Path.Combine(named, PeftAdapter.ConfigFile)), "the base must load as a plain model");
        using var loaded = PolicyCheckpoint.Load(folder, CPU, baseFolder: named); // the weights' sha256 check passes
        Assert.True(loaded.forward(Ids).equal(round2.forward(Ids)).all().item<bool>());

        string merged = Path.Combine(RepositoryPaths.NewTempFolder("export-merged"), "out");
        int code = MergeAdapterCommand.Create().Parse(["--base", named, "--adapter", folder, "--out", merged]).Invoke();
        Assert.Equal(0, code);
        using var mergedModel = HfCheckpoint.Load(merged);
        var difference = (mergedModel.forward(Ids) - round2.forward(Ids)).abs().max().item<float>();
        Assert.True(difference < 1e-5f, $"merged differs by {difference}");
    }
}
