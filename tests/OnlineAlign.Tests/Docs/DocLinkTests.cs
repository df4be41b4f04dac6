using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Docs;

/// <summary>Every relative link in README.md and docs/*.md resolves: the file exists, and an anchor names a heading.</summary>
public class DocLinkTests
{
    public static TheoryData<string> MarkdownFiles()
    {
        var files = new TheoryData<string>();
        files.Add("README.md");
        foreach (string file in Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "docs"), "*.md").Order(StringComparer.Ordinal))
            files.Add(Path.GetRelativePath(RepositoryPaths.Root, file));
        return files;
    }

    [Theory]
    [MemberData(nameof(MarkdownFiles))]
    public void EveryRelativeLinkResolves(string file)
    {
        var broken = DocLinks.Broken(RepositoryPaths.Root, Path.Combine(RepositoryPaths.Root, file));
        Assert.True(broken.Count == 0, "broken links:\n" + string.Join('\n', broken));
    }

    [Fact]
    public void TheReadmeLinksEveryDocsPage()
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "README.md"));
        var unlinked = Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "docs"), "*.md")
            .Select(f => "docs/" + Path.GetFileName(f))
            .Where(page => !readme.Contains($"]({page}", StringComparison.Ordinal))
            .ToList();
        Assert.True(unlinked.Count == 0, "docs pages the README does not link: " + string.Join(", ", unlinked));
    }

    [Fact]
    public void AMissingFileAWrongAnchorAndALinkOutOfTheRepositoryAreEachNamed()
    {
        string root = RepositoryPaths.NewTempFolder("doclinks");
        Directory.CreateDirectory(Path.Combine(root, "docs"));
        File.WriteAllText(Path.Combine(root, "docs", "page.md"), "# A page\n\n## Limits, and refusals (2026)\n");
        File.WriteAllText(Path.Combine(root, "README.md"), string.Join('\n',
            "[ok](docs/page.md) [ok anchor](docs/page.md#limits-and-refusals-2026) [web](https://example.com/x.md)",
            "[gone](docs/missing.md)",
            "[bad anchor](docs/page.md#limits)",
            "[outside](../elsewhere.md)",
            "`[in code](docs/missing.md)`",
            "```",
            "[in a fence](docs/missing.md)",
            "```",
            "[own heading](#nothing-here)"));

        var broken = DocLinks.Broken(root, Path.Combine(root, "README.md"));

        Assert.Equal([
            "README.md:2: docs/missing.md (no such file or folder)",
            "README.md:3: docs/page.md#limits (no heading with id #limits in docs/page.md)",
            "README.md:4: ../elsewhere.md (outside the repository)",
            "README.md:9: #nothing-here (no heading with id #nothing-here in README.md)",
        ], broken);
    }
}
