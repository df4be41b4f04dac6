using System.Text;
using System.Text.RegularExpressions;

namespace OnlineAlign.Tests.Infrastructure;

/// <summary>
/// The end of what each silo of a cluster said that matters to a run (the product's own lines, warnings and errors,
/// membership changes), as text for a test's output: a test that timed out in CI can then be read from the CI log alone,
/// without the silos' whole output (which a CI run does not keep).
/// </summary>
public static partial class SiloLogTail
{
    /// <summary>
    /// Runs a test's body on the cluster; when it throws (a timeout above all), the end of every silo's log goes to the
    /// test's output first (xUnit prints it with the failure), followed by the failure again: xUnit prints the failure above
    /// the output, and a CI log read from its end (all that is kept of a long one) showed the logs without the failure.
    /// </summary>
    public static async Task OnFailureAsync(LocalTestCluster cluster, Xunit.Abstractions.ITestOutputHelper output, Func<Task> body)
    {
        try { await body(); }
        catch (Exception e)
        {
            output.WriteLine(Report(Of(cluster), e));
            throw;
        }
    }

    /// <summary>The silos' log tails, then a last line naming the failure (its message cut at 2,000 characters).</summary>
    public static string Report(string tails, Exception failure)
    {
        string said = $"{failure.GetType().FullName}: {failure.Message}";
        return $"{tails}--- the test failed with {(said.Length > 2000 ? said[..2000] : said)}";
    }

    /// <summary>The last <paramref name="lines"/> such entries of each silo, each on one line of at most 400 characters.</summary>
    public static string Of(LocalTestCluster cluster, int lines = 40)
    {
        var text = new StringBuilder();
        for (int i = 0; i < cluster.Silos.Count; i++)
        {
            var silo = cluster.Silos[i];
            var entries = Collapsed(Entries(silo.Output).Where(Matters)).ToList();
            text.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"--- silo {i} (pid {silo.ProcessId}{(silo.HasExited ? ", exited" : "")}): last {Math.Min(lines, entries.Count)} of {entries.Count} entries");
            foreach (var entry in entries.TakeLast(lines)) text.AppendLine(entry.Length > 400 ? entry[..400] : entry);
        }
        return text.ToString();
    }

    /// <summary>
    /// The console logger writes an entry as "info: Category[id]" and then its message on indented lines: each entry here
    /// is one line "info Category: message"; a line of the silo's own (its start banner) is an entry of its own.
    /// </summary>
    public static IEnumerable<string> Entries(string output)
    {
        StringBuilder? entry = null;
        foreach (var line in output.Split('\n'))
        {
            var text = line.TrimEnd('\r');
            var head = Head().Match(text);
            if (head.Success || !text.StartsWith("      ", StringComparison.Ordinal) || entry is null)
            {
                if (entry is not null) yield return entry.ToString();
                entry = null;
                if (head.Success) entry = new StringBuilder($"{head.Groups[1].Value} {head.Groups[2].Value}:");
                else if (text.Length > 0) yield return text;
                continue;
            }
            entry.Append(' ').Append(text.Trim());
        }
        if (entry is not null) yield return entry.ToString();
    }

    /// <summary>
    /// Runs of one entry said again and again (Orleans' status updates of a call still pending, which name the call a run
    /// waits on) as one entry with its count, so that they do not push everything else out of the tail.
    /// </summary>
    public static IEnumerable<string> Collapsed(IEnumerable<string> entries)
    {
        string? last = null;
        int count = 0;
        foreach (var entry in entries)
        {
            if (entry == last)
            {
                count++;
                continue;
            }
            if (last is not null) yield return count > 1 ? $"{last} (x{count})" : last;
            (last, count) = (entry, 1);
        }
        if (last is not null) yield return count > 1 ? $"{last} (x{count})" : last;
    }

    /// <summary>The product's lines, anything at warning or above, and Orleans' membership view changes.</summary>
    private static bool Matters(string entry) =>
        entry.StartsWith("OnlineAlign", StringComparison.Ordinal) || entry.Contains(" OnlineAlign.", StringComparison.Ordinal)
        || entry.StartsWith("warn ", StringComparison.Ordinal) || entry.StartsWith("fail ", StringComparison.Ordinal)
        || entry.StartsWith("crit ", StringComparison.Ordinal)
        || entry.Contains("MembershipTableManager", StringComparison.Ordinal) || entry.Contains("SiloMetadata", StringComparison.Ordinal);

    [GeneratedRegex(@"^(trce|dbug|info|warn|fail|crit): (\S+?)(\[\d+\])?$")]
    private static partial Regex Head();
}
