using System.Diagnostics;
using TorchSharp;

namespace OnlineAlign.Modeling;

/// <summary>How much memory a device has: the machine's (or container's) for the CPU, nvidia-smi's total for a GPU.</summary>
public static class DeviceMemory
{
    private static readonly Dictionary<int, long?> Gpus = new();

    /// <summary>The device's memory in bytes, or null where it cannot be told (no nvidia-smi).</summary>
    public static long? Total(torch.Device device)
    {
        if (device.type != DeviceType.CUDA) return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        int index = Math.Max(0, (int)device.index);
        lock (Gpus)
        {
            if (!Gpus.TryGetValue(index, out var bytes)) Gpus[index] = bytes = QueryNvidiaSmi(index);
            return bytes;
        }
    }

    private static long? QueryNvidiaSmi(int index)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("nvidia-smi", $"--query-gpu=memory.total --format=csv,noheader,nounits -i {index}")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            });
            if (process is null) return null;
            string output = process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(10_000) || process.ExitCode != 0) return null;
            return long.TryParse(output.Trim(), out long mib) ? mib * (1L << 20) : null;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return null;
        }
    }
}
