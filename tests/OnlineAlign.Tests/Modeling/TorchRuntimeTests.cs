using OnlineAlign.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace OnlineAlign.Tests.Modeling;

public class TorchRuntimeTests
{
    [Fact]
    public void ForwardAndBackwardPassRunsOnTheConfiguredDevice()
    {
        var device = DeviceSetting.Resolve("cpu");
        using var scope = NewDisposeScope();
        var generator = new Generator(7);
        var w = randn(new long[] { 4, 3 }, generator: generator).to(device).requires_grad_();
        var x = randn(new long[] { 5, 4 }, generator: generator).to(device);
        var loss = x.matmul(w).pow(2).mean();
        loss.backward();

        // d/dW mean((xW)^2) = 2 x^T (xW) / numel
        var expected = x.t().matmul(x.matmul(w.detach())) * 2.0 / 15.0;
        Assert.True(w.grad!.allclose(expected, rtol: 1e-5, atol: 1e-6));
    }

    [Theory]
    [InlineData("banana")]
    [InlineData("cuda:x")]
    public void UnknownDeviceSettingIsRefusedWithItsValue(string setting)
    {
        var error = Assert.Throws<ArgumentException>(() => DeviceSetting.Resolve(setting));
        Assert.Contains(setting, error.Message);
    }
}
