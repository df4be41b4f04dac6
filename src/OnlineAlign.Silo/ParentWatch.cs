using System.Diagnostics;

namespace OnlineAlign.Silo;

/// <summary>Stops the silo when the process that started it is gone (the local cluster's CLI was killed or its terminal closed).</summary>
public sealed class ParentWatch(int parentProcessId, IHostApplicationLifetime lifetime) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (IsAlive(parentProcessId)) continue;
            Console.Error.WriteLine($"the process that started this silo (pid {parentProcessId}) is gone; stopping");
            lifetime.StopApplication();
            return;
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; }
    }
}
