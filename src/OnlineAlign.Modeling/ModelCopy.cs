using static TorchSharp.torch;

namespace OnlineAlign.Modeling;

/// <summary>
/// A model's weights copied in memory, on its device and in its dtype: what loading the checkpoint written from it gives
/// (HfCheckpoint.Load builds the same modules, places them, and copies every weight into them), without the file. The
/// copy shares nothing with the source (no gradients, no optimiser's flat buffers). Plain models only: a LoRA model's
/// adapters are set up by PeftAdapter.
/// </summary>
public static class ModelCopy
{
    public static DecoderLM Of(DecoderLM source)
    {
        if (source.Lora is not null) throw new ArgumentException("a LoRA model is copied by loading its adapter onto its base");
        var model = new DecoderLM(source.Config);
        try
        {
            model.Place(source.Device, source.DType);
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
}
