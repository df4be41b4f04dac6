using System.Globalization;
namespace OnlineAlign.Tests.Infrastructure;

/// <summary>
/// The test's side of the silo's named fault points (Silo:FaultFolder, see FaultPoints): hold a phase at a
/// point and learn when a worker reached it, or make the next arrivals fail. Waiting is for an event the
/// silo signals, never for an amount of time.
/// </summary>
public sealed class FaultControl(string folder)
{
    public string Folder { get; } = folder;

    /// <summary>The next worker to reach the point stops there until <see cref="Release"/>.</summary>
    public void Hold(string point) => WriteWhole(PathOf(point, "hold"), "");

    public void Release(string point) => File.Delete(PathOf(point, "hold"));

    /// <summary>The next <paramref name="times"/> arrivals at the point throw: "deterministic", "transient", "diskfull" or "storagefull".</summary>
    public void Fail(string point, string kind, int times) => WriteWhole(PathOf(point, "fail"), $"{kind} {times}");

    /// <summary>The next <paramref name="times"/> arrivals at a point that asks (FaultPoints.Fires) do at once what they would do after a while.</summary>
    public void Fire(string point, int times) => WriteWhole(PathOf(point, "fire"), times.ToString(CultureInfo.InvariantCulture));

    /// <summary>While switched on, a point that asks (FaultPoints.IsOn) behaves as the fault it names.</summary>
    public void SwitchOn(string point) => WriteWhole(PathOf(point, "on"), "");

    /// <summary>How many injected failures (or fires) the point has thrown.</summary>
    public int Hits(string point) => File.Exists(PathOf(point, "hits")) ? File.ReadAllLines(PathOf(point, "hits")).Length : 0;

    public bool Reached(string point) => File.Exists(PathOf(point, "reached"));

    /// <summary>The process id of the silo whose worker reached the point.</summary>
    public int ReachedBy(string point) => int.Parse(File.ReadAllText(PathOf(point, "reached")), CultureInfo.InvariantCulture);

    /// <summary>Waits until a worker is held at the point (the timeout only bounds a test that went wrong).</summary>
    public async Task WaitUntilReachedAsync(string point, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Reached(point))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"no worker reached fault point '{point}' within {timeout}");
            await Task.Delay(100);
        }
    }

    /// <summary>A silo may read the file the moment it exists: it appears with its content (written beside it, then renamed).</summary>
    private static void WriteWhole(string path, string content)
    {
        string written = path + ".test.tmp";
        File.WriteAllText(written, content);
        File.Move(written, path, overwrite: true);
    }

    private string PathOf(string point, string suffix) => Path.Combine(Folder, point.Replace('/', '.') + "." + suffix);
}
