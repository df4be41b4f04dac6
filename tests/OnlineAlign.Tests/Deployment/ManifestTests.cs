using System.ComponentModel;
using System.Diagnostics;
using System.Text.RegularExpressions;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Deployment;

/// <summary>
/// deploy/kubernetes checked by deploy/validate-manifests.mjs: every document against its kind's Kubernetes schema
/// (npm kubernetes-models, unknown fields refused), the project's rules (probes, requests and limits, security
/// context, emptyDir size limits, the NetworkPolicy) and the perimeter (deploy/manifest-perimeter.mjs: no applied
/// Secret, images by digest, no token or pod delete for model-parsing pods, egress denied, Pod Security, disruption
/// budgets, TLS). Each perimeter rule is broken in a copy and must be named with its file, kind/name and problem.
/// Needs node and `npm ci`, as Azurite does.
/// </summary>
// Starts node (needs `npm ci`): a cluster-kind test for the fast subset's filter.
[Trait("Kind", "Cluster")]
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

    /// <summary>One deployment item of issue 26 per case: two breaches of it in a copy, each reported where it is.</summary>
    [Theory]
    [InlineData("secret")]
    [InlineData("image")]
    [InlineData("access")]
    [InlineData("egress")]
    [InlineData("pod-security")]
    [InlineData("disruption")]
    [InlineData("tls")]
    public async Task EachPerimeterRuleRefusesItsBreach(string item)
    {
        string copy = RepositoryPaths.NewTempFolder("manifests");
        try
        {
            foreach (string file in Directory.GetFiles(ManifestFolder, "*.yaml"))
                File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
            string F(string name) => Path.Combine(copy, name);
            string[] arguments = [];
            (string Where, string What)[] expected;
            switch (item)
            {
                case "secret":
                    // The old secret.yaml: applying it would overwrite the real key with the placeholder.
                    File.WriteAllText(F("secret.yaml"),
                        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: onlinealign\ntype: Opaque\nstringData:\n  api-key: \"<a long random string>\"\n");
                    ReplaceOnce(F("kustomization.yaml"), @"^  - rbac\.yaml\n", "  - rbac.yaml\n  - secret.yaml\n");
                    File.AppendAllText(F("kustomization.yaml"), "secretGenerator:\n  - name: onlinealign-extra\n    behavior: replace\n    literals: [\"api-key=changeme\"]\n");
                    expected = [("secret.yaml: Secret/onlinealign:", "holds placeholder values (stringData.api-key"),
                                ("kustomization.yaml: Kustomization/-:", "behavior 'replace' changes the live Secret"),
                                ("kustomization.yaml: Kustomization/-:", "literal 'api-key' is a placeholder")];
                    break;
                case "image":
                    ReplaceOnce(F("control.yaml"), @"image: onlinealign-silo@sha256:0{64}", "image: onlinealign-silo:latest");
                    ReplaceOnce(F("gpu.yaml"), @"image: onlinealign-silo@sha256:0{64}", "image: onlinealign-silo:0.1.0");
                    arguments = ["--release"]; // the placeholder digest, accepted otherwise, is refused for a release
                    expected = [("control.yaml: Deployment/onlinealign-control:", "uses the tag 'latest'"),
                                ("gpu.yaml: Deployment/onlinealign-gpu:", "is not pinned by digest"),
                                ("kustomization.yaml: Kustomization/-:", "still the placeholder digest")];
                    break;
                case "access":
                    ReplaceOnce(F("rbac.yaml"), @"verbs: \[""get"", ""list"", ""watch""\]", @"verbs: [""get"", ""list"", ""watch"", ""delete""]");
                    ReplaceOnce(F("gpu.yaml"), @"automountServiceAccountToken: false", "automountServiceAccountToken: true");
                    expected = [("rbac.yaml: Role/onlinealign-control:", "grants delete"),
                                ("gpu.yaml: Deployment/onlinealign-gpu:", "parses model files (hostile input), so it must hold no Kubernetes token")];
                    break;
                case "egress":
                    ReplaceOnce(F("networkpolicy.yaml"), @"^ +- 169\.254\.169\.254/32 +# cloud instance metadata\n", ""); // the control's API rule
                    ReplaceOnce(F("networkpolicy.yaml"), @"name: onlinealign-egress(\n(.*\n){4}) +policyTypes: \[Egress\]", "name: onlinealign-egress$1  policyTypes: [Ingress]");
                    expected = [("networkpolicy.yaml: NetworkPolicy/onlinealign-control-kubernetes-api:", "reaches the cloud metadata address 169.254.169.254"),
                                ("gpu.yaml: Deployment/onlinealign-gpu:", "no NetworkPolicy with policyTypes Egress selects its pods")];
                    break;
                case "pod-security":
                    ReplaceOnce(F("namespace.yaml"), @"^ +pod-security\.kubernetes\.io/enforce: restricted\n", "");
                    ReplaceOnce(F("control.yaml"), @"\{ name: grpc, containerPort: 5080 \}", "{ name: grpc, containerPort: 5080, hostPort: 5080 }");
                    expected = [("namespace.yaml: Namespace/onlinealign:", "no pod-security.kubernetes.io/enforce label"),
                                ("control.yaml: Deployment/onlinealign-control:", "hostPort 5080")];
                    break;
                case "disruption":
                    ReplaceOnce(F("pdb.yaml"), @"role: gpu \}", "role: gpus }");
                    ReplaceOnce(F("pdb.yaml"), @"maxUnavailable: 1(\n.*\n.*\n +matchLabels: \{ app: onlinealign, role: control \})", "minAvailable: 1$1");
                    expected = [("gpu.yaml: Deployment/onlinealign-gpu:", "no PodDisruptionBudget selects its pods"),
                                ("pdb.yaml: PodDisruptionBudget/onlinealign-control:", "allows no eviction at all")];
                    break;
                case "tls":
                    ReplaceOnce(F("control.yaml"), @"^.*Api__CertificatePath.*\n", "");
                    ReplaceOnce(F("gpu.yaml"), @"^.*ClusterTls__CaPath.*\n", "");
                    ReplaceOnce(F("gpu.yaml"), @"startupProbe:(.*)\n( +)tcpSocket", "startupProbe:$1\n$2grpc");
                    expected = [("control.yaml: Deployment/onlinealign-control:", "Api__CertificatePath is not set to a file of the Secret onlinealign-api-tls"),
                                ("gpu.yaml: Deployment/onlinealign-gpu:", "ClusterTls__CaPath is not set to a file of the Secret onlinealign-cluster-tls"),
                                ("gpu.yaml: Deployment/onlinealign-gpu:", "startupProbe is a grpc probe on the TLS API port 5080")];
                    break;
                default:
                    throw new ArgumentException(item);
            }

            var (exitCode, output) = await ValidateAsync(copy, arguments);

            Assert.True(exitCode == 1, $"expected exit code 1, got {exitCode}:\n{output}");
            string[] lines = output.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            foreach (var (where, what) in expected)
                Assert.True(lines.Any(line => line.Contains(where) && line.Contains(what)), $"no line with '{where}' and '{what}' in:\n{output}");
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
        int matches = regex.Count(text);
        Assert.True(matches == 1, $"expected '{pattern}' once in {Path.GetFileName(file)}, found it {matches} times: update this test with the manifest");
        File.WriteAllText(file, regex.Replace(text, replacement, 1));
    }

    /// <summary>Runs `node deploy/validate-manifests.mjs [folder]` from the repository root; stdout and stderr together.</summary>
    private static async Task<(int ExitCode, string Output)> ValidateAsync(string? folder, params string[] arguments)
    {
        var info = new ProcessStartInfo("node")
        {
            WorkingDirectory = RepositoryPaths.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(RepositoryPaths.Root, "deploy", "validate-manifests.mjs"));
        foreach (string argument in arguments) info.ArgumentList.Add(argument);
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
