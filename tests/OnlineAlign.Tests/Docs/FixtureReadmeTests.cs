using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Docs;

/// <summary>
/// Every reference fixture is listed in fixtures/README.md with what made it (its script, or why the script is
/// missing), so a fixture added without its origin fails here; and its links (to the scripts) resolve.
/// </summary>
public class FixtureReadmeTests
{
    private static readonly string Fixtures = Path.Combine(RepositoryPaths.Root, "tests", "OnlineAlign.Tests", "fixtures");

    [Fact]
    public void EveryFixtureIsListedWithWhatMadeIt()
    {
        string readme = File.ReadAllText(Path.Combine(Fixtures, "README.md"));
        // Each model folder of hf/, and each file beside them: a fixture is a folder of one model or a single file.
        var entries = Directory.GetDirectories(Fixtures).SelectMany(group =>
                Directory.GetFileSystemEntries(group).Select(e => Path.GetRelativePath(Fixtures, e).Replace('\\', '/') + (Directory.Exists(e) ? "/" : "")))
            .Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(entries);
        var unlisted = entries.Where(e => !readme.Contains($"`{e}`", StringComparison.Ordinal)).ToList();
        Assert.True(unlisted.Count == 0, "fixtures not listed in fixtures/README.md: " + string.Join(", ", unlisted));
        Assert.Empty(DocLinks.Broken(RepositoryPaths.Root, Path.Combine(Fixtures, "README.md")));
    }
}
