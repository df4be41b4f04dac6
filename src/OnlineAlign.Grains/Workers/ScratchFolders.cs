using Microsoft.Extensions.Logging;

namespace OnlineAlign.Grains.Workers;

/// <summary>
/// The scratch folders of one phase call (a checkpoint being written before it is uploaded and cached). Whatever
/// the call leaves in them is removed when it ends: a failed or cancelled attempt's partial files must not stay
/// on the silo's disk, where a full disk would otherwise fill up further with every retry. A finished checkpoint
/// was moved into the cache first, so there is nothing left to remove.
/// </summary>
public sealed class ScratchFolders(string cacheFolder, ILogger log)
{
    private readonly List<string> _folders = new();

    /// <summary>A new, empty folder under the silo's cache folder, named by run and purpose.</summary>
    public string Create(string runId, string what)
    {
        string folder = Path.Combine(cacheFolder, "scratch", runId, $"{what}-{Guid.NewGuid():N}");
        _folders.Add(folder); // listed before it exists: a create that fails half-way is cleaned up too
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>Removes what this call's folders still hold (never throws: the call's own outcome is what counts).</summary>
    public void RemoveLeftovers(string runId)
    {
        foreach (var folder in _folders)
        {
            try
            {
                if (!Directory.Exists(folder)) continue;
                Directory.Delete(folder, recursive: true);
                log.LogInformation("run {Run}: removed the scratch folder {Folder} of an attempt that did not finish", runId, folder);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                log.LogWarning(e, "run {Run}: could not remove the scratch folder {Folder}", runId, folder);
            }
        }
        _folders.Clear();
    }
}
