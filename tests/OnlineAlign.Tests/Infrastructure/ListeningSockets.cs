using System.Globalization;
using System.Net;

namespace OnlineAlign.Tests.Infrastructure;

/// <summary>The TCP addresses a process listens on, read from /proc (Linux): its socket inodes matched to /proc/net/tcp{,6}.</summary>
public static class ListeningSockets
{
    public static List<IPEndPoint> Of(int pid)
    {
        var inodes = new HashSet<string>();
        foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
        {
            try
            {
                var target = new FileInfo(fd).LinkTarget;
                if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal)) inodes.Add(target[8..^1]);
            }
            catch (IOException) { } // a descriptor closed while we looked
        }
        var result = new List<IPEndPoint>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f[3] != "0A" || !inodes.Contains(f[9])) continue; // 0A: LISTEN
                var parts = f[1].Split(':');
                result.Add(new IPEndPoint(Address(parts[0]), int.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture)));
            }
        return result;
    }

    /// <summary>/proc writes addresses as 32-bit words in host (little-endian) order.</summary>
    private static IPAddress Address(string hex)
    {
        var bytes = new byte[hex.Length / 2];
        for (int word = 0; word < bytes.Length / 4; word++)
            for (int b = 0; b < 4; b++)
                bytes[word * 4 + b] = byte.Parse(hex.AsSpan(word * 8 + (3 - b) * 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return new IPAddress(bytes);
    }
}
