using System.ComponentModel;
using System.Diagnostics;
using System.Text.RegularExpressions;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Deployment;

/// <summary>
/// deploy/kubernetes checked by deploy/validate-manifests.mjs: every document against its kind's Kubernetes schema
/// (npm kubernetes-models, unknown fields refused) and the project's rules (probes, requests and limits, security
/// context, emptyDir size limits, pinned image tags, the NetworkPolicy). Needs node and `npm ci`, as Azurite does.
/// </summary>
public class ManifestTests
{
    private static string ManifestFolder => Path.Combine(RepositoryPaths.Root, "deploy", "kubernetes");

    [Fact]
    public async Task ShippedManifestsPassTheSchemaAndSafetyChecks()
    {
        var (exitCode, output) = await ValidateAsync(folder: null);

        Assert.True(exitCode == 0, $"node deploy/validate-manifests.mjs exited {exitCode}:\n{output}");
        Assert.Contains("documents valid", output);
    }

    [Fact]
    public async Task AMisspelledFieldAndAContainerWithoutLimitsAreRefused()
    {
        string copy = RepositoryPaths.NewTempFolder("manifests");
        try
        {
            foreach (string file in Directory.GetFiles(ManifestFolder, "*.yaml"))
                File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
            // A field the Deployment schema does not have (kubectl would refuse it; the probe would silently be missing).
            ReplaceOnce(Path.Combine(copy, "gpu.yaml"), @"^([ \t]+)readinessProbe:", "$1readinessProbee:");
            // The control silo's container without resource limits.
            ReplaceOnce(Path.Combine(copy, "control.yaml"), @"^[ \t]+limits:[^\n]*\n", "");

            var (exitCode, output) = await ValidateAsync(copy);

            Assert.True(exitCode == 1, $"expected exit code 1, got {exitCode}:\n{output}");
            string[] lines = output.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            Assert.Contains(lines, line => line.Contains("gpu.yaml: Deployment/onlinealign-gpu:") && line.Contains("readinessProbee: unknown field"));
            Assert.Contains(lines, line => line.Contains("gpu.yaml: Deployment/onlinealign-gpu:") && line.Contains("readinessProbe is missing"));
            Assert.Contains(lines, line => line.Contains("control.yaml: Deployment/onlinealign-control:") && line.Contains("resources.limits.cpu is missing"));
            Assert.Contains(lines, line => line.Contains("control.yaml: Deployment/onlinealign-control:") && line.Contains("resources.limits.memory is missing"));
            Assert.DoesNotContain("documents valid", output);
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    private static void ReplaceOnce(string file, string pattern, string replacement)
    {
        string text = File.ReadAllText(file).Replace("\r\n", "\n");
        var regex = new Regex(pattern, RegexOptions.Multiline);
        int matches = regex.Matches(text).Count;
        Assert.True(matches == 1, $"expected '{pattern}' once in {Path.GetFileName(file)}, found it {matches} times: update this test with the manifest");
        File.WriteAllText(file, regex.Replace(text, replacement, 1));
    }

    /// <summary>Runs `node deploy/validate-manifests.mjs [folder]` from the repository root; stdout and stderr together.</summary>
    private static async Task<(int ExitCode, string Output)> ValidateAsync(string? folder)
    {
        var info = new ProcessStartInfo("node")
        {
            WorkingDirectory = RepositoryPaths.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(RepositoryPaths.Root, "deploy", "validate-manifests.mjs"));
        if (folder is not null) info.ArgumentList.Add(folder);

        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException("node was not found on PATH: install Node.js and run `npm ci` in the repository root", e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException("node deploy/validate-manifests.mjs ran past 60 s");
            }
            return (process.ExitCode, await stdout + await stderr);
        }
    }
}
