using OnlineAlign.Contracts;
using OnlineAlign.Execution.Files;
using OnlineAlign.Execution.Specs;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// A spec's memory plan on a GPU silo (<see cref="SpecCheckGrain"/>): its files checked by path under the silo's data roots,
/// then read (config, tokenizer, prompts) with every open confined to the silo's read roots, so a link swapped between the
/// check and the read is refused rather than followed. No plan ("" or 0) where the spec's files are refused or unreadable.
/// </summary>
public static class SpecPlans
{
    /// <summary>The plan on the device and the host, as GetRun shows it.</summary>
    public static string Describe(RunSpec spec, WorkerSettings settings) =>
        Checked(spec, settings) is { } device ? DescribeChecked(spec, device, settings) : "";

    /// <summary>The plan's peak device bytes (placement by load).</summary>
    public static long Peak(RunSpec spec, WorkerSettings settings) =>
        Checked(spec, settings) is { } device ? PeakChecked(spec, device, settings) : 0;

    /// <summary><see cref="Describe"/> once the spec's files were checked: what is read now is confined.</summary>
    public static string DescribeChecked(RunSpec spec, MemoryPlanning.DeviceBudget device, WorkerSettings settings)
    {
        using (settings.ConfineReads())
            return RunSpecMapping.Plan(spec, device.Cpu, device.Bytes) is not { } onDevice ? ""
                : onDevice.Describe(device.Name, device.Bytes)
                  + (RunSpecMapping.HostPlan(spec, device.Cpu) is { } host ? "; " + host.Describe("the host", device.HostBytes) : "");
    }

    /// <summary><see cref="Peak"/> once the spec's files were checked: what is read now is confined.</summary>
    public static long PeakChecked(RunSpec spec, MemoryPlanning.DeviceBudget device, WorkerSettings settings)
    {
        using (settings.ConfineReads()) return RunSpecMapping.Plan(spec, device.Cpu, device.Bytes)?.Peak ?? 0;
    }

    private static MemoryPlanning.DeviceBudget? Checked(RunSpec spec, WorkerSettings settings) =>
        settings.Budget(spec) is { } device && SpecFiles.Problems(spec, settings.DataRoots, settings.Limits).Count == 0 ? device : null;
}
