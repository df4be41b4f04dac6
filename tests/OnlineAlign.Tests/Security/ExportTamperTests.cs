using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using OnlineAlign.Api.V1;
using OnlineAlign.Cli.Client;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Security;

/// <summary>
/// The client's side of an export: every file of the ExportPolicy stream is checked against the size and sha256 the
/// silo sent, so bytes changed on the way (one byte of model.safetensors flipped) are refused, naming the file and both
/// hashes, and nothing that looks like a model is left behind. The silo's side (a stored checkpoint tampered with is
/// DATA_LOSS) is MultiSiloTests.ACorruptCheckpointIsReportedAndTheRunContinuesFromTheLastGoodOne.
/// </summary>
public class ExportTamperTests
{
    [Fact]
    public async Task AnExportWithOneByteFlippedInItsSafetensorsIsRefusedNamingTheFileAndTheSha256Mismatch()
    {
        string model = RepositoryPaths.Fixture("hf", "llama-tiny");
        string root = RepositoryPaths.NewTempFolder("tampered-export");

        // The same stream untouched downloads the same bytes: the refusal below is for the flipped byte alone.
        string intact = await PolicyDownload.WriteAsync(Client(Chunks(model, flip: false)), "run-x", 1, Path.Combine(root, "intact"), CancellationToken.None);
        foreach (var file in Directory.GetFiles(model))
            Assert.Equal(File.ReadAllBytes(file), File.ReadAllBytes(Path.Combine(intact, Path.GetFileName(file))));

        string target = Path.Combine(root, "tampered");
        var error = await Assert.ThrowsAsync<InvalidDataException>(() =>
            PolicyDownload.WriteAsync(Client(Chunks(model, flip: true)), "run-x", 1, target, CancellationToken.None));
        string sent = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(model, "model.safetensors"))));
        Assert.Contains("file 'model.safetensors' arrived as", error.Message);
        Assert.Contains($"the silo sent {new FileInfo(Path.Combine(model, "model.safetensors")).Length} bytes with sha256 {sent}", error.Message);
        Assert.Matches("with sha256 [0-9a-f]{64}; the silo sent", error.Message);
        Assert.DoesNotContain($"with sha256 {sent}; the silo sent", error.Message);
        // Neither the output folder nor its staging folder is left.
        Assert.Equal([Path.Combine(root, "intact")], Directory.GetFileSystemEntries(root));
    }

    /// <summary>The folder's files as the silo's PolicyStream sends them (64 KiB chunks), optionally with one byte of model.safetensors flipped.</summary>
    private static List<PolicyChunk> Chunks(string folder, bool flip)
    {
        var chunks = new List<PolicyChunk>();
        foreach (var path in Directory.GetFiles(folder).Order(StringComparer.Ordinal))
        {
            var bytes = File.ReadAllBytes(path);
            string sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
            var sent = (byte[])bytes.Clone();
            if (flip && Path.GetFileName(path) == "model.safetensors") sent[sent.Length / 2] ^= 0x01;
            for (int offset = 0; offset < sent.Length || offset == 0; offset += 65536)
            {
                int length = Math.Min(65536, sent.Length - offset);
                chunks.Add(new PolicyChunk
                {
                    File = Path.GetFileName(path), Offset = offset, Size = bytes.Length, Sha256 = sha256,
                    Data = ByteString.CopyFrom(sent, offset, length), Last = offset + length >= sent.Length,
                });
                if (length == 0) break;
            }
        }
        return chunks;
    }

    private static Runs.RunsClient Client(List<PolicyChunk> chunks) => new(new ExportOnly(chunks));

    /// <summary>A call invoker that answers ExportPolicy with the given chunks and nothing else.</summary>
    private sealed class ExportOnly(List<PolicyChunk> chunks) : CallInvoker
    {
        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host,
            CallOptions options, TRequest request) =>
            method.Name == "ExportPolicy"
                ? new(new Reader<TResponse>(chunks.Cast<TResponse>().ToList()), Task.FromResult(new Metadata()), () => Status.DefaultSuccess, () => new Metadata(), () => { })
                : throw new NotSupportedException(method.FullName);

        public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
            throw new NotSupportedException(method.FullName);

        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
            throw new NotSupportedException(method.FullName);

        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host,
            CallOptions options) => throw new NotSupportedException(method.FullName);

        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host,
            CallOptions options) => throw new NotSupportedException(method.FullName);
    }

    private sealed class Reader<T>(List<T> items) : IAsyncStreamReader<T>
    {
        private int _next = -1;
        public T Current => items[_next];
        public Task<bool> MoveNext(CancellationToken cancellationToken) => Task.FromResult(++_next < items.Count);
    }
}
