using System.Text.Json.Nodes;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Tests.Infrastructure;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

/// <summary>
/// Loading a checkpoint streams its tensors into the placed model one at a time: the host holds at most one tensor's
/// staging beside the model (not the whole file, then the model, then its placed copy), counted by construction.
/// </summary>
public class StreamingLoadTests
{
    private static string Fixture => RepositoryPaths.Fixture("hf", "llama-tiny");

    [Fact]
    public void ALoadStagesOneTensorAtATimeAndGivesTheFilesWeights()
    {
        string file = Path.Combine(Fixture, HfCheckpoint.WeightsFile);
        var index = SafeTensors.ReadIndex(file);
        long largest = index.Values.Max(e => e.Shape.Aggregate(1L, (a, b) => a * b) * 4); // F32 file
        long total = index.Values.Sum(e => e.Shape.Aggregate(1L, (a, b) => a * b) * 4);

        var staging = new StagingCounter();
        using var model = HfCheckpoint.Load(Fixture, staging: staging);
        Assert.Equal(index.Count, staging.Tensors);
        Assert.Equal(largest, staging.LargestTensorBytes);
        Assert.Equal(largest, staging.PeakBytes);          // never two staging tensors at once
        Assert.True(staging.PeakBytes < total / 2, $"peak {staging.PeakBytes} of a {total}-byte checkpoint");
        Assert.Equal(0, staging.LiveBytes);                 // each disposed after its copy

        // The same weights as the whole-file reader's, bit for bit.
        var state = model.state_dict();
        foreach (var (name, t) in SafeTensors.Read(file))
            using (t)
                Assert.True(t.equal(state[name]).all().item<bool>(), name);

        // The memory plan's host part counts this staging.
        Assert.True(HostMemoryPlan.Estimate(model.Config, 4, cpu: false, model.Config.ParameterCount(), lora: false, carried: false).Staging >= staging.PeakBytes);
    }

    [Fact]
    public void AConvertingLoadCopiesIntoThePlacedDtype()
    {
        var staging = new StagingCounter();
        using var half = HfCheckpoint.Load(Fixture, dtype: ScalarType.BFloat16, staging: staging);
        using var full = HfCheckpoint.Load(Fixture);
        Assert.Equal(ScalarType.BFloat16, half.DType);
        var reference = full.state_dict();
        foreach (var (name, p) in half.state_dict())
        {
            Assert.Equal(ScalarType.BFloat16, p.dtype);
            Assert.True(p.equal(reference[name].to(ScalarType.BFloat16)).all().item<bool>(), name);
        }
    }

    [Fact]
    public void AMismatchedCheckpointIsRefusedFromItsHeaderBeforeAnyTensorIsRead()
    {
        string folder = RepositoryPaths.NewTempFolder("mismatched");
        File.Copy(Path.Combine(Fixture, HfCheckpoint.WeightsFile), Path.Combine(folder, HfCheckpoint.WeightsFile));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture, "config.json")))!.AsObject();
        config["intermediate_size"] = 128;
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());

        var staging = new StagingCounter();
        var error = Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(folder, staging: staging));
        Assert.Contains("mlp.gate_proj.weight' has shape [176, 64], " + Path.Combine(folder, "config.json") + " needs [128, 64]", error.Message);
        Assert.Equal(0, staging.Tensors);
    }
}
