using System.Diagnostics;
using OnlineAlign.Modeling;
using static TorchSharp.torch;

namespace OnlineAlign.Benchmarks;

/// <summary>Proves a device works: matmul agrees with CPU, a backward step runs, and bf16 matmul throughput.</summary>
public static class DeviceCheck
{
    public static void Run(string deviceSetting, TextWriter report)
    {
        var device = DeviceSetting.Resolve(deviceSetting);
        report.WriteLine($"device: {device} (cuda available: {DeviceSetting.CudaAvailable()}, devices: " +
            $"{(DeviceSetting.CudaAvailable() ? cuda.device_count() : 0)})");
        using (var scope = NewDisposeScope())
        {
            var gen = new Generator(1);
            var a = randn([512, 256], generator: gen);
            var b = randn([256, 128], generator: gen);
            var onDevice = a.to(device).matmul(b.to(device)).cpu();
            double diff = (onDevice - a.matmul(b)).abs().max().item<float>();
            report.WriteLine($"matmul 512x256x128 {device} vs cpu: max |diff| = {diff:E2}");

            var w = randn([256, 64], generator: gen).to(device).requires_grad_();
            var x = a.to(device);
            var loss = x.matmul(w).tanh().pow(2).mean();
            loss.backward();
            var expected = ManualGrad(a, w.detach().cpu());
            double gdiff = (w.grad!.cpu() - expected).abs().max().item<float>();
            report.WriteLine($"backward on {device}: loss {loss.item<float>():F6}, max |grad - cpu grad| = {gdiff:E2}");
        }
        if (device.type == TorchSharp.DeviceType.CUDA)
        {
            double tflops = MatmulTflops(device, 8192, ScalarType.BFloat16, 20);
            report.WriteLine($"bf16 matmul 8192^3 on {device}: {tflops:F1} TFLOP/s");
        }
        else
        {
            double tflops = MatmulTflops(device, 1024, ScalarType.Float32, 10);
            report.WriteLine($"fp32 matmul 1024^3 on cpu: {tflops * 1000:F1} GFLOP/s");
        }
    }

    private static Tensor ManualGrad(Tensor x, Tensor w)
    {
        // d/dw mean(tanh(xw)^2) = x^T [2 tanh(xw) (1 - tanh(xw)^2)] / numel
        var t = x.matmul(w).tanh();
        return x.t().matmul(2 * t * (1 - t.pow(2))) / t.NumberOfElements;
    }

    public static double MatmulTflops(Device device, long n, ScalarType dtype, int iterations)
    {
        using var scope = NewDisposeScope();
        var a = randn([n, n], dtype: dtype, device: device);
        var b = randn([n, n], dtype: dtype, device: device);
        for (int i = 0; i < 3; i++) a.matmul(b).Dispose();
        Sync(device);
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++) a.matmul(b).Dispose();
        Sync(device);
        return 2.0 * n * n * n * iterations / watch.Elapsed.TotalSeconds / 1e12;
    }

    public static void Sync(Device device)
    {
        if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize(device);
    }
}
