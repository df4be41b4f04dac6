using System.Text;
using System.Text.RegularExpressions;

namespace OnlineAlign.Tests.Docs;

/// <summary>
/// Finds the relative links in a markdown file that do not resolve: the target file or folder is missing, or an
/// <c>#anchor</c> into a markdown file names no heading there (GitHub's heading ids). Links to web addresses are not
/// followed; code blocks and inline code are skipped (they show commands, not links).
/// </summary>
public static partial class DocLinks
{
    /// <summary>Each broken link as "file:line: target (why)", paths relative to <paramref name="root"/>.</summary>
    public static IReadOnlyList<string> Broken(string root, string markdownFile)
    {
        var problems = new List<string>();
        string relativeFile = Path.GetRelativePath(root, markdownFile);
        var lines = File.ReadAllLines(markdownFile);
        bool inFence = false;
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].TrimStart().StartsWith("```", StringComparison.Ordinal)) { inFence = !inFence; continue; }
            if (inFence) continue;
            foreach (Match m in Link().Matches(InlineCode().Replace(lines[i], "")))
            {
                string target = m.Groups["target"].Value;
                string? why = Problem(root, markdownFile, target);
                if (why != null) problems.Add($"{relativeFile}:{i + 1}: {target} ({why})");
            }
        }
        return problems;
    }

    private static string? Problem(string root, string markdownFile, string target)
    {
        if (Uri.TryCreate(target, UriKind.Absolute, out var uri) && uri.Scheme is not "file") return null;  // http(s), mailto
        int hash = target.IndexOf('#', StringComparison.Ordinal);
        string pathPart = hash < 0 ? target : target[..hash];
        string? anchor = hash < 0 ? null : target[(hash + 1)..];
        string resolved = pathPart.Length == 0
            ? markdownFile
            : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(markdownFile)!, Uri.UnescapeDataString(pathPart)));
        if (!Path.GetFullPath(resolved).StartsWith(Path.GetFullPath(root), StringComparison.Ordinal))
            return "outside the repository";
        if (!File.Exists(resolved) && !Directory.Exists(resolved)) return "no such file or folder";
        if (anchor is { Length: > 0 } && resolved.EndsWith(".md", StringComparison.OrdinalIgnoreCase)
            && !HeadingIds(resolved).Contains(anchor))
            return $"no heading with id #{anchor} in {Path.GetRelativePath(root, resolved)}";
        return null;
    }

    /// <summary>GitHub's ids for a file's headings: lower case, punctuation dropped, spaces to hyphens, repeats -1, -2.</summary>
    public static HashSet<string> HeadingIds(string markdownFile)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        bool inFence = false;
        foreach (string line in File.ReadLines(markdownFile))
        {
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal)) { inFence = !inFence; continue; }
            if (inFence) continue;
            var heading = Heading().Match(line);
            if (!heading.Success) continue;
            string id = Slug(heading.Groups["text"].Value);
            int n = seen.GetValueOrDefault(id);
            seen[id] = n + 1;
            ids.Add(n == 0 ? id : $"{id}-{n}");
        }
        return ids;
    }

    public static string Slug(string heading)
    {
        var slug = new StringBuilder();
        foreach (char c in heading.Trim().ToLowerInvariant())
        {
            if (char.IsLetterOrDigit(c) || c is '-' or '_') slug.Append(c);
            else if (c == ' ') slug.Append('-');
        }
        return slug.ToString();
    }

    [GeneratedRegex(@"(?<!!)\[[^\]]*\]\((?<target>[^)\s]+)(\s+""[^""]*"")?\)|!\[[^\]]*\]\((?<target>[^)\s]+)\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"`[^`]*`")]
    private static partial Regex InlineCode();

    [GeneratedRegex(@"^#{1,6}\s+(?<text>.+?)\s*#*\s*$")]
    private static partial Regex Heading();
}
