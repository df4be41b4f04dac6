using System.Diagnostics;

namespace OnlineAlign.Tests.Infrastructure;

/// <summary>Runs the real `onlinealign` CLI as a process and captures its output.</summary>
public static class CliProcess
{
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(TimeSpan timeout, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(RepositoryPaths.CliDll);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["Silo__TorchThreads"] = "1";   // the silos a `local` or `up` starts: as SiloProcess's
        info.Environment["Silo__PretrainedCacheFolder"] = RepositoryPaths.PretrainedCache;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try { await process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { process.Kill(entireProcessTree: true); throw new TimeoutException($"onlinealign {string.Join(' ', args)} ran past {timeout}"); }
        return (process.ExitCode, await stdout, await stderr);
    }
}
