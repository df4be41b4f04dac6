using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace OnlineAlign.Modeling.Checkpoints;

/// <summary>
/// How a model folder's files are opened: a model folder is hostile input (a user names it, anyone with write access
/// under a data root may have made it). A file is opened once, from its path with every link followed, without
/// following a link at the last step, without blocking on a pipe, and is then checked through the open handle: a
/// regular file, still the file the resolved path names. Everything read comes from that same handle, so nothing can
/// be swapped between the check and the read. Whether the resolved path lies under the silo's data roots is the
/// caller's check (SpecFiles), made on the same resolved path.
/// </summary>
public static class ModelFile
{
    /// <summary>The largest JSON or text file a loader reads whole (config.json, tokenizer.json, index files).</summary>
    public const long MaxTextBytes = 256L << 20;

    /// <summary>Opens a file for reading as described above; missing: FileNotFoundException; not a regular file: InvalidDataException.</summary>
    public static FileStream OpenRead(string path)
    {
        string real;
        try { real = RealPath(Path.GetFullPath(path)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new InvalidDataException($"{path}: cannot be resolved ({e.Message})");
        }
        if (!OperatingSystem.IsLinux() || Flags() is not { } flags)
        {
            if (Directory.Exists(real)) throw NotRegular(path);
            if (!File.Exists(real)) throw new FileNotFoundException($"{path} does not exist", path);
            if (_confinedTo is { } confined && !IsUnder(real, confined.Roots)) throw OutsideRoots(path, confined);
            return new FileStream(real, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        int fd = Open(real, flags);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            const int NotFound = 2, Loop = 40, NotFolder = 20;
            throw errno switch
            {
                NotFound or NotFolder => new FileNotFoundException($"{path} does not exist", path),
                Loop => new InvalidDataException($"{path}: became a symbolic link while it was opened"),
                _ => new InvalidDataException($"{path}: cannot be opened (errno {errno})"),
            };
        }
        var handle = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
        try
        {
            if (FileType(fd) != RegularFile) throw NotRegular(path);
            // The handle's own path: a folder on the way swapped for a link after it was resolved shows here.
            string? opened = new FileInfo($"/proc/self/fd/{fd}").LinkTarget;
            if (opened is not null && opened != real)
                throw new InvalidDataException($"{path}: changed while it was opened (resolved to '{real}', opened '{opened}')");
            // The confinement is checked on the file the handle holds: a link swapped after the spec check cannot lead out.
            if (_confinedTo is { } roots && !IsUnder(opened ?? real, roots.Roots)) throw OutsideRoots(path, roots);
            return new FileStream(handle, FileAccess.Read, 1 << 16);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    [ThreadStatic] private static Confinement? _confinedTo;

    private sealed record Confinement(string[] Roots, string Scope);

    /// <summary>What a worker silo confines its reads to: its data roots and its own cache folders.</summary>
    public const string SiloScope = "this silo's data roots";

    /// <summary>
    /// Until disposed, every file this thread opens through <see cref="OpenRead"/> must lie under one of <paramref name="roots"/>
    /// (real paths), checked on the open handle itself. A worker silo sets it around each phase's model-thread job and its spec
    /// checks (its data roots and its own cache folders); an in-process run and the CLI around their loads (<see cref="Pin"/>):
    /// a path is checked or resolved once, the load resolves it again, and a link swapped in between would otherwise be followed
    /// elsewhere. A thread scope, not a parameter, because every loader (config, tokenizer, index, weights, adapters) reads
    /// through here synchronously on the one thread that loads. <paramref name="scope"/> names the roots in the refusal.
    /// </summary>
    public static IDisposable ConfineTo(IReadOnlyList<string> roots, string scope = SiloScope)
    {
        var outer = _confinedTo;
        _confinedTo = new([.. roots.Select(r => r.TrimEnd(Path.DirectorySeparatorChar))], scope);
        return new Restore(outer);
    }

    /// <summary>
    /// Roots for <see cref="ConfineTo"/> where there are no data roots (an in-process run, a CLI command): each path as it
    /// resolves now (links followed) and, for a folder, each of its entries as it resolves now (a Hugging Face cache's files
    /// link to blobs outside the folder). A link swapped after this call cannot lead a later read anywhere else.
    /// </summary>
    public static IReadOnlyList<string> Pin(IEnumerable<string?> paths)
    {
        var roots = new List<string>();
        foreach (var path in paths)
        {
            if (string.IsNullOrEmpty(path)) continue;
            string real = RealPath(Path.GetFullPath(path));
            roots.Add(real);
            if (Directory.Exists(real)) roots.AddRange(Directory.EnumerateFileSystemEntries(real).Select(RealPath));
        }
        return [.. roots.Distinct()];
    }

    private sealed class Restore(Confinement? outer) : IDisposable
    {
        public void Dispose() => _confinedTo = outer;
    }

    private static bool IsUnder(string path, IReadOnlyList<string> roots) =>
        roots.Any(root => root.Length == 0 || path == root || path.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal));

    private static InvalidDataException OutsideRoots(string path, Confinement confined) =>
        new($"{path}: is not under {confined.Scope} ({string.Join(", ", confined.Roots)}) as opened (a link changed after it was checked?)");

    /// <summary>A text file read whole through <see cref="OpenRead"/>, refused above <paramref name="maxBytes"/> before it is read.</summary>
    public static string ReadAllText(string path, long maxBytes = MaxTextBytes)
    {
        using var file = OpenRead(path);
        if (file.Length > maxBytes) throw new InvalidDataException($"{path}: is {file.Length} bytes; the limit is {maxBytes}");
        using var reader = new StreamReader(file, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>
    /// A file name an index or config names inside its folder: a plain name (no folder separator, not "." or "..",
    /// not absolute, no NUL), so what it names is an entry of the folder, checked like every other entry.
    /// </summary>
    public static string InFolder(string folder, string name, string source, string what)
    {
        if (name.Length == 0 || name.Length > 255 || name is "." or ".." || name.Contains('/') || name.Contains('\\') || name.Contains('\0')
            || Path.IsPathRooted(name))
            throw new InvalidDataException($"{source}: {what} '{Printable(name)}' must be a plain file name inside the folder (no '/', '..' or absolute path)");
        return Path.Combine(folder, name);
    }

    private static string Printable(string s) => s.Length > 200 ? s[..200] + "..." : s.Replace("\0", "\\0");

    /// <summary>An absolute path with every symbolic link in it followed (like realpath(3)); parts that do not exist are kept as they are.</summary>
    public static string RealPath(string fullPath)
    {
        var pending = new Queue<string>(fullPath.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries));
        string current = Path.GetPathRoot(fullPath)!;
        int links = 0;
        while (pending.Count > 0)
        {
            string next = Path.Combine(current, pending.Dequeue());
            if (new FileInfo(next).LinkTarget is { } target)
            {
                if (++links > 40) throw new IOException($"too many levels of symbolic links in '{fullPath}'");
                string resolved = Path.GetFullPath(target, current);
                pending = new Queue<string>(resolved.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Concat(pending));
                current = Path.GetPathRoot(resolved)!;
            }
            else current = next;
        }
        return current;
    }

    private static InvalidDataException NotRegular(string path) => new($"{path}: is not a regular file (a folder, pipe, socket or device)");

    private const int RegularFile = 0x8000;

    /// <summary>O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC for this architecture (O_NOFOLLOW differs); null where unknown.</summary>
    private static int? Flags()
    {
        const int NonBlock = 0x800, CloseOnExec = 0x80000;
        return RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 or Architecture.X86 => 0x20000 | NonBlock | CloseOnExec,
            Architecture.Arm64 or Architecture.Arm => 0x8000 | NonBlock | CloseOnExec,
            _ => null,
        };
    }

    /// <summary>The file type bits of the open file's st_mode (statx(2) on the descriptor: the same layout on every architecture).</summary>
    private static int FileType(int fd)
    {
        var buffer = new byte[256];
        const int EmptyPath = 0x1000, TypeField = 0x1;
        if (Statx(fd, "", EmptyPath, TypeField, buffer) != 0) return 0;
        return BitConverter.ToUInt16(buffer, 28) & 0xF000;
    }

    // Paths are marshalled explicitly as UTF-8 (LPUTF8Str), what Linux file names are; CA2101 counts only UTF-16 as safe.
    [SuppressMessage("Globalization", "CA2101", Justification = "explicit LPUTF8Str marshalling for a libc path")]
    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [SuppressMessage("Globalization", "CA2101", Justification = "explicit LPUTF8Str marshalling for a libc path")]
    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int dirFd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, [Out] byte[] buffer);
}
