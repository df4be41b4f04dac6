using System.Runtime.InteropServices;

namespace OnlineAlign.Execution.Files;

/// <summary>
/// The folders under which a silo reads files a run spec names (model folders, prompt sets, reward models).
/// A path is accepted only if it is absolute and, with every symbolic link in it followed, lies under one of
/// the roots; the refusal is the same whether or not the file exists, so a caller learns nothing about files
/// outside the roots.
/// </summary>
public sealed class DataRoots
{
    private readonly string[] _roots;

    public DataRoots(IEnumerable<string> roots)
    {
        _roots = roots.Where(r => !string.IsNullOrWhiteSpace(r)).Select(r => RealPath(Path.GetFullPath(r))).Distinct().ToArray();
        if (_roots.Length == 0) throw new ArgumentException("Silo:DataRoots: at least one folder is needed");
    }

    public IReadOnlyList<string> Roots => _roots;

    /// <summary>The path with its links followed, or the reason it is refused (naming the spec field).</summary>
    public string Resolve(string field, string path)
    {
        string Refused() => $"{field} '{path}' is not under this silo's data roots ({string.Join(", ", _roots)}; " +
                            "set Silo:DataRoots on the silo that reads it, or move the files under one)";
        if (!Path.IsPathFullyQualified(path)) throw new SpecFileException($"{field} '{path}' must be an absolute path (the silo reads it, not the client)");
        if (path.Contains('\0')) throw new SpecFileException(Refused());
        string real;
        try { real = RealPath(Path.GetFullPath(path)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { throw new SpecFileException(Refused()); }
        if (!_roots.Any(root => Under(real, root))) throw new SpecFileException(Refused());
        return real;
    }

    private static bool Under(string path, string root) =>
        path == root || path.StartsWith(root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>An absolute path with every symbolic link in it followed (like realpath(3)); parts that do not exist are kept as they are.</summary>
    public static string RealPath(string fullPath) => Modeling.Checkpoints.ModelFile.RealPath(fullPath);

    /// <summary>Whether the path is a regular file (not a folder, pipe, socket or device) once links are followed.</summary>
    public static bool IsRegularFile(string path) => FileType(path) == RegularFile;

    private const int RegularFile = 0x8000;

    /// <summary>The file type bits of st_mode (statx(2) on Linux: the same layout on every architecture); elsewhere, File.Exists.</summary>
    private static int FileType(string path)
    {
        if (!OperatingSystem.IsLinux()) return File.Exists(path) ? RegularFile : 0;
        var buffer = new byte[256];
        const int AtCurrentFolder = -100, TypeField = 0x1;
        if (Statx(AtCurrentFolder, path, 0, TypeField, buffer) != 0) return 0;
        return BitConverter.ToUInt16(buffer, 28) & 0xF000;
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int dirFd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, [Out] byte[] buffer);
}

/// <summary>A file a spec names cannot be read: outside the data roots, not a regular file, or too large (gRPC: INVALID_ARGUMENT).</summary>
public sealed class SpecFileException(string message) : Exception(message);
