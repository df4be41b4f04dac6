using System.Diagnostics;
using OnlineAlign.Modeling;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>
/// `copy`: what a train phase pays for its private copy of a model it holds (ModelCache.Owned -> ModelCopy.Of), built where
/// the model runs against the earlier way (built in float32 on the host, then converted and moved: DecoderLM.Place), the
/// two timed alternately on the same model so that both see the same machine.
/// </summary>
public static class ModelCopyBenchmark
{
    public sealed record Settings(string Model, string Device, ScalarType DType, int Repeats);

    public static void Run(Settings s, TextWriter report)
    {
        var device = DeviceSetting.Resolve(s.Device);
        var config = ModelShapes.ByName(s.Model);
        using var source = ModelShapes.Random(config, device, s.DType);
        report.WriteLine($"model {s.Model}: {config.ParameterCount() / 1e6:F1}M parameters, {s.DType}, {device}; {s.Repeats} copies each way, alternating");
        var onDevice = new List<double>();
        var viaHost = new List<double>();
        for (int i = 0; i < s.Repeats; i++)
        {
            onDevice.Add(Time(device, () => ModelCopy.Of(source)));
            viaHost.Add(Time(device, () => CopyViaHost(source)));
        }
        report.WriteLine($"built on the device, then copied:  {Describe(onDevice)}");
        report.WriteLine($"built in float32 on the host, placed, then copied (before): {Describe(viaHost)}");
    }

    /// <summary>ModelCopy.Of as it was: the modules built on the host in float32, converted and moved, then the weights copied.</summary>
    private static DecoderLM CopyViaHost(DecoderLM source)
    {
        var model = new DecoderLM(source.Config).Place(source.Device, source.DType);
        var from = source.state_dict();
        using var noGrad = no_grad();
        foreach (var (name, p) in model.state_dict()) p.copy_(from[name]);
        return model;
    }

    private static double Time(Device device, Func<DecoderLM> copy)
    {
        var clock = Stopwatch.StartNew();
        using var model = copy();
        if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize();
        return clock.Elapsed.TotalSeconds;
    }

    private static string Describe(List<double> seconds) =>
        $"median {seconds.Order().ElementAt(seconds.Count / 2):F3} s (min {seconds.Min():F3}, max {seconds.Max():F3})";
}
