using TorchSharp;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling.Training;

/// <summary>
/// Gradient checkpointing of one decoder layer (PyTorch's reentrant checkpoint): the forward runs without keeping
/// activations and saves only the layer's input; the backward runs the layer again with gradients on and back-propagates
/// through that recomputation, which accumulates the layer's parameter gradients and yields the input's. Memory: one
/// hidden state per layer instead of all its activations, for a second forward of each layer. LoRA dropout replays the
/// same masks: the generator's state is saved before the forward and restored for the recomputation.
/// </summary>
internal sealed class CheckpointedLayer : autograd.SingleTensorFunction<CheckpointedLayer>
{
    /// <summary>
    /// Everything the layer needs besides its input. Its tensors are not inputs the graph tracks; they are saved with the
    /// input, since the caller's dispose scope frees its own handles long before the backward pass.
    /// </summary>
    internal sealed record Call(DecoderLayer Layer, int Index, Tensor Cos, Tensor Sin, Tensor? Mask, Generator? Dropout);

    public override string Name => nameof(CheckpointedLayer);

    public static Tensor Apply(Tensor x, Call call) => apply(x, call);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, call) = ((Tensor)vars[0], (Call)vars[1]);
        ctx.save_for_backward([x, call.Cos, call.Sin, call.Mask!]);
        ctx.save_data("call", call);
        // Kept past the caller's dispose scope (a few kilobytes); the backward pass disposes it.
        if (call.Dropout is not null) ctx.save_data("dropout", call.Dropout.get_state().DetachFromDisposeScope());
        Lora.LoraLinear.InCheckpointedForward = true;
        try { return call.Layer.forward(x, call.Cos, call.Sin, call.Mask, null, call.Index); }
        finally { Lora.LoraLinear.InCheckpointedForward = false; }
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        // The recomputation's tensors are this callback's own: freed here, but for the input's gradient.
        using var scope = NewDisposeScope();
        var saved = ctx.get_saved_variables();
        var call = (Call)ctx.get_data("call") with { Cos = saved[1], Sin = saved[2], Mask = saved[3] };
        var input = saved[0].detach().requires_grad_(true);
        Tensor? after = null;
        if (call.Dropout is not null)
        {
            after = call.Dropout.get_state();
            using var before = (Tensor)ctx.get_data("dropout");
            call.Dropout.set_state(before);
        }
        using (enable_grad())
        {
            var output = call.Layer.forward(input, call.Cos, call.Sin, call.Mask, null, call.Index);
            autograd.backward([output], [gradOutput]);
        }
        if (after is not null) call.Dropout!.set_state(after);
        return [input.grad!.MoveToOuterDisposeScope(), null!];
    }
}
