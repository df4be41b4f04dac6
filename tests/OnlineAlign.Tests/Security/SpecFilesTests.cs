using OnlineAlign.Execution.Files;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Security;

public class SpecFilesTests
{
    [Fact]
    public void ALineLongerThanTheLimitIsRefusedWithItsFileAndLineBeforeItIsReadWhole()
    {
        string file = Path.Combine(RepositoryPaths.NewTempFolder("lines"), "prompts.jsonl");
        File.WriteAllText(file, "short\r\nalso short\n" + new string('x', 5000) + "\nlast");
        var lines = SpecFiles.ReadLines(file, 100).GetEnumerator();
        Assert.True(lines.MoveNext());
        Assert.Equal("short", lines.Current);
        Assert.True(lines.MoveNext());
        Assert.Equal("also short", lines.Current);
        var e = Assert.Throws<InvalidDataException>(() => lines.MoveNext());
        Assert.Equal($"{file}:3: the line is longer than 100 characters (Limits:PromptLineCharacters)", e.Message);
        Assert.Equal(File.ReadLines(file), SpecFiles.ReadLines(file, 10_000));
    }

    [Fact]
    public void RootsFollowLinksAndRefuseEscapesAlike()
    {
        string root = RepositoryPaths.NewTempFolder("root"), outside = RepositoryPaths.NewTempFolder("outside");
        var roots = new DataRoots([root]);
        Assert.Equal(Path.Combine(root, "a", "b.jsonl"), roots.Resolve("f", Path.Combine(root, "a", "b.jsonl")));
        Directory.CreateSymbolicLink(Path.Combine(root, "in"), Path.Combine(root, "a"));
        Assert.Equal(Path.Combine(root, "a", "x"), roots.Resolve("f", Path.Combine(root, "in", "x")));
        Directory.CreateSymbolicLink(Path.Combine(root, "out"), outside);
        foreach (var escape in new[] { Path.Combine(root, "out", "x"), Path.Combine(root, "..", Path.GetFileName(outside), "x"), root + "-sibling/x" })
            Assert.StartsWith($"f '{escape}' is not under this silo's data roots", Assert.Throws<SpecFileException>(() => roots.Resolve("f", escape)).Message);
        Assert.Contains("must be an absolute path", Assert.Throws<SpecFileException>(() => roots.Resolve("f", "a/b")).Message);
    }
}
