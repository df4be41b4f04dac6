using System.Security.Cryptography;
using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Modeling.Checkpoints;

namespace OnlineAlign.Cli.Client;

/// <summary>
/// Writes an exported policy on the user's machine from the silo's ExportPolicy stream. Each file is written
/// under a temporary name in a staging folder and checked against its sha256 and size; the staging folder
/// becomes the output folder only when every file checked out, so a broken stream leaves nothing behind that
/// looks like a model. An existing output folder is never overwritten.
/// </summary>
public static class PolicyDownload
{
    /// <summary>The largest exported file accepted (a 70B model's shard is well under it).</summary>
    private const long MaxFileBytes = 256L << 30;

    /// <param name="epoch">null: the round's current attempt; set: that attempt (a round superseded by a rollback)</param>
    public static async Task<string> WriteAsync(Runs.RunsClient client, string runId, int round, string outputFolder, CancellationToken ct, int? epoch = null)
    {
        string target = Path.GetFullPath(outputFolder);
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any() || File.Exists(target))
            throw new ArgumentException($"--out {target}: already exists and is not empty; choose a new folder (an export never overwrites files)");
        string staging = target.TrimEnd(Path.DirectorySeparatorChar) + $".partial-{Guid.NewGuid():N}"[..17];
        Directory.CreateDirectory(staging);
        try
        {
            var request = new ExportPolicyRequest { RunId = runId, Round = round };
            if (epoch is int attempt) request.Epoch = attempt;
            await DownloadFilesAsync(client, request, staging, ct);
            // A LoRA checkpoint is laid out as transformers and PEFT load it (see ExportLayout).
            if (ExportLayout.IsLoraBase(staging)) ExportLayout.SplitBase(staging, target);
            else if (PolicyCheckpoint.IsAdapterOnly(staging))
            {
                string baseDownload = Path.Combine(staging, ".base-partial");
                Directory.CreateDirectory(baseDownload);
                await DownloadFilesAsync(client, new ExportPolicyRequest { RunId = runId, Round = 0 }, baseDownload, ct);
                ExportLayout.AttachBase(staging, target, baseDownload);
            }
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (Directory.Exists(target)) Directory.Delete(target); // empty, checked above
            Directory.Move(staging, target);
            return target;
        }
        catch
        {
            Directory.Delete(staging, recursive: true);
            throw;
        }
    }

    /// <summary>Writes the files of one ExportPolicy stream into <paramref name="staging"/>, each checked by size and sha256.</summary>
    private static async Task DownloadFilesAsync(Runs.RunsClient client, ExportPolicyRequest request, string staging, CancellationToken ct)
    {
        string runId = request.RunId;
        using var call = client.ExportPolicy(request, cancellationToken: ct);
        FileStream? file = null;
        IncrementalHash? hash = null;
        string? name = null;
        long written = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct))
            {
                if (name != chunk.File)
                {
                    if (name is not null) throw new InvalidDataException($"export of run '{runId}': file '{name}' ended without its last chunk");
                    name = SafeName(chunk.File);
                    if (!seen.Add(name)) throw new InvalidDataException($"export of run '{runId}': file '{name}' was sent twice");
                    if (chunk.Size is < 0 or > MaxFileBytes)
                        throw new InvalidDataException($"export of run '{runId}': file '{name}' claims {chunk.Size} bytes");
                    file = new FileStream(Path.Combine(staging, name), FileMode.CreateNew, FileAccess.Write);
                    hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    written = 0;
                }
                if (chunk.Offset != written || written + chunk.Data.Length > chunk.Size)
                    throw new InvalidDataException($"export of run '{runId}': file '{name}' chunk at offset {chunk.Offset} does not follow the " +
                        $"{written} bytes received");
                await file!.WriteAsync(chunk.Data.Memory, ct);
                hash!.AppendData(chunk.Data.Span);
                written += chunk.Data.Length;
                if (!chunk.Last) continue;
                string actual = Convert.ToHexStringLower(hash.GetHashAndReset());
                if (written != chunk.Size || actual != chunk.Sha256)
                    throw new InvalidDataException($"export of run '{runId}': file '{name}' arrived as {written} bytes with sha256 {actual}; the " +
                        $"silo sent {chunk.Size} bytes with sha256 {chunk.Sha256}");
                await file.DisposeAsync();
                hash.Dispose();
                (file, hash, name) = (null, null, null);
            }
            if (name is not null) throw new InvalidDataException($"export of run '{runId}': the stream ended inside file '{name}'");
            if (seen.Count == 0) throw new InvalidDataException($"export of run '{runId}': the silo sent no files");
        }
        finally
        {
            if (file is not null) await file.DisposeAsync();
            hash?.Dispose();
        }
    }

    /// <summary>A file name from the wire, refused unless it is a plain name (no folders, no "..").</summary>
    private static string SafeName(string name) =>
        name.Length is > 0 and <= 255 && name == Path.GetFileName(name) && name is not ("." or "..") && name.IndexOfAny(Path.GetInvalidFileNameChars()) < 0
            ? name : throw new InvalidDataException($"the silo sent a file name that is not a plain name: '{name}'");
}
