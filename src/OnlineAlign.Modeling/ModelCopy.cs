using OnlineAlign.Modeling.Lora;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling;

/// <summary>
/// A model's weights copied in memory, on its device and in its dtype: what loading the checkpoint written from it gives
/// (HfCheckpoint.Load builds the same modules, places them, and copies every weight into them), without the file. The
/// copy shares nothing with the source (no gradients, no optimiser's flat buffers), except a LoRA model's frozen base:
/// its copy runs over the same base weights with copies of the adapters, as PeftAdapter.Load builds it from the adapter's
/// file onto a shared base (the file holds the adapters as float32, which every adapter dtype round-trips exactly).
/// </summary>
public static class ModelCopy
{
    public static DecoderLM Of(DecoderLM source)
    {
        if (source.Lora is not null) return AdaptedCopyOf(source);
        var model = new DecoderLM(source.Config, source.Device, source.DType);
        try
        {
            var from = source.state_dict();
            using var noGrad = no_grad();
            foreach (var (name, p) in model.state_dict()) p.copy_(from[name]);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static DecoderLM AdaptedCopyOf(DecoderLM source)
    {
        var model = LoraAdapters.SharingBaseOf(source);
        try
        {
            using (var generator = new Generator(0)) model.AddAdapters(source.Lora!, generator); // A is overwritten below
            var from = source.AdapterTensors();
            using var noGrad = no_grad();
            foreach (var (name, p) in model.AdapterTensors()) p.copy_(from[name]);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
