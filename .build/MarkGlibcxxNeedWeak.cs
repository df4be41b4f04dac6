using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

// Sets VER_FLG_WEAK on the GLIBCXX_3.4.32 Vernaux entry of every libLibTorchSharp.so under a folder.
// Idempotent: an entry already weak is left alone. Parses ELF64 little-endian only (linux-x64).
public class MarkGlibcxxNeedWeak : Task
{
    [Required] public string Directory { get; set; } = "";

    private const ushort VerFlagWeak = 0x2;
    private const string Version = "GLIBCXX_3.4.32";

    public override bool Execute()
    {
        if (!System.IO.Directory.Exists(Directory)) return true;
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories))
        {
            try
            {
                var result = Patch(file);
                Log.LogMessage(MessageImportance.Normal, $"{file}: {result}");
            }
            catch (Exception e)
            {
                Log.LogError($"Could not mark {Version} weak in {file}: {e.Message}");
            }
        }
        return !Log.HasLoggedErrors;
    }

    private static string Patch(string path)
    {
        byte[] elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[4] != 2 || elf[5] != 1)
            return "not an ELF64 little-endian file, skipped";

        ulong shoff = BitConverter.ToUInt64(elf, 0x28);
        ushort shentsize = BitConverter.ToUInt16(elf, 0x3A);
        ushort shnum = BitConverter.ToUInt16(elf, 0x3C);
        const uint ShtGnuVerneed = 0x6ffffffe;

        for (int i = 0; i < shnum; i++)
        {
            long sh = (long)shoff + i * shentsize;
            if (BitConverter.ToUInt32(elf, (int)sh + 4) != ShtGnuVerneed) continue;
            long offset = (long)BitConverter.ToUInt64(elf, (int)sh + 0x18);
            uint link = BitConverter.ToUInt32(elf, (int)sh + 0x28);
            long strtab = (long)BitConverter.ToUInt64(elf, (int)(shoff + link * (ulong)shentsize) + 0x18);

            long verneed = offset;
            while (true)
            {
                ushort count = BitConverter.ToUInt16(elf, (int)verneed + 2);
                uint aux = BitConverter.ToUInt32(elf, (int)verneed + 8);
                uint next = BitConverter.ToUInt32(elf, (int)verneed + 12);
                long vernaux = verneed + aux;
                for (int j = 0; j < count; j++)
                {
                    ushort flags = BitConverter.ToUInt16(elf, (int)vernaux + 4);
                    uint name = BitConverter.ToUInt32(elf, (int)vernaux + 8);
                    if (ReadCString(elf, strtab + name) == Version)
                    {
                        if ((flags & VerFlagWeak) != 0) return "already weak";
                        flags |= VerFlagWeak;
                        BitConverter.GetBytes(flags).CopyTo(elf, (int)vernaux + 4);
                        // Write a new file and move it over: the output copy may be a hard link into a cache.
                        string temp = path + ".weak-tmp";
                        File.WriteAllBytes(temp, elf);
                        File.Delete(path);
                        File.Move(temp, path);
                        return "marked " + Version + " weak";
                    }
                    vernaux += BitConverter.ToUInt32(elf, (int)vernaux + 12);
                }
                if (next == 0) break;
                verneed += next;
            }
        }
        return "no " + Version + " need, nothing to do";
    }

    private static string ReadCString(byte[] bytes, long start)
    {
        long end = start;
        while (bytes[end] != 0) end++;
        return Encoding.ASCII.GetString(bytes, (int)start, (int)(end - start));
    }
}
