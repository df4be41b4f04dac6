using TorchSharp;

namespace OnlineAlign.Modeling;

/// <summary>
/// Resolves the user's device setting (cpu, cuda, cuda:N, auto) to a TorchSharp device. Every piece of
/// tensor code takes its device from here so that the same code runs on CPU silos and GPU silos.
/// </summary>
public static class DeviceSetting
{
    public static torch.Device Resolve(string? setting)
    {
        string value = (setting ?? "auto").Trim().ToLowerInvariant();
        switch (value)
        {
            case "" or "auto":
                return CudaAvailable() ? new torch.Device(DeviceType.CUDA, 0) : torch.CPU;
            case "cpu":
                return torch.CPU;
        }
        if (value == "cuda" || value.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (value.Length > 5 && !int.TryParse(value.AsSpan(5), out index))
                throw new ArgumentException($"device '{setting}': the index after 'cuda:' must be a number, e.g. cuda:0");
            if (!CudaAvailable())
                throw new ArgumentException(
                    $"device '{setting}': CUDA is not available. Put a CUDA libtorch (for example PyTorch's torch/lib) " +
                    "first on LD_LIBRARY_PATH, or build with -p:TorchBackend=cuda, or use device 'cpu'.");
            if (index >= torch.cuda.device_count())
                throw new ArgumentException($"device '{setting}': only {torch.cuda.device_count()} CUDA device(s) are visible");
            return new torch.Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"device '{setting}' is not one of: cpu, cuda, cuda:N, auto");
    }

    private static bool? _cuda;

    /// <summary>True when a CUDA-capable libtorch is loaded and sees a GPU.</summary>
    public static bool CudaAvailable()
    {
        if (_cuda is bool known) return known;
        try
        {
            torch.InitializeDeviceType(DeviceType.CUDA);
            _cuda = torch.cuda.is_available();
        }
        catch (Exception)
        {
            _cuda = false;
        }
        return _cuda.Value;
    }
}
