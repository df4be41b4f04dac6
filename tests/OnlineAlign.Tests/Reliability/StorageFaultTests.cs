using Azure.Storage.Blobs;
using OnlineAlign.Api.V1;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Reliability;

[Collection(ProcessLanes.B)]
[Trait("Kind", "Cluster")]
public class StorageFaultTests(SharedCluster shared) : IClassFixture<SharedCluster>
{
    private static RunSpec Spec() => LocalTestCluster.SmallSpec(rounds: 2);

    [Fact]
    public async Task AStorageOutageDuringACheckpointUploadIsRiddenOutAndLosesNothing()
    {
        var cluster = shared.Cluster;
        var client = cluster.Client();
        const string upload = "train/round-1/upload";
        cluster.Faults.Hold(upload);
        var run = await client.StartRunAsync(new StartRunRequest { Spec = Spec() });

        // Storage goes away exactly while round 1's trained checkpoint is about to be uploaded.
        await cluster.Faults.WaitUntilReachedAsync(upload, TimeSpan.FromMinutes(4));
        await cluster.StopStorageAsync();
        cluster.Faults.Release(upload);
        // The upload (behind the evaluation) fails, is seen as transient and retried with backoff (the evaluation, the wait
        // for the upload or the train phase again, whichever meets the outage first); it fails again while storage is still down.
        var second = new System.Text.RegularExpressions.Regex($@"run {run.Id} round 1 \w+ attempt failed \(transient failure 2");
        for (var deadline = DateTime.UtcNow.AddMinutes(3); !second.IsMatch(cluster.Silos[0].Output);)
        {
            Assert.True(DateTime.UtcNow < deadline, "no second transient failure of round 1 while storage was down");
            await Task.Delay(200);
        }
        await cluster.StartStorageAgainAsync();

        await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(6));
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));

        // Nothing committed was lost or changed: the same run without an outage ends with the same weights.
        var again = await client.StartRunAsync(new StartRunRequest { Spec = Spec() });
        await RunProbe.WaitForAsync(client, again.Id, r => r.Status == "completed", TimeSpan.FromMinutes(4));
        var clean = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = again.Id })).Rounds;
        var cleanWeights = new List<string>();
        var outageWeights = new List<string>();
        for (int i = 0; i < clean.Count; i++)
        {
            cleanWeights.Add(await RunProbe.WeightsSha256(cluster, clean[i].Checkpoint));
            outageWeights.Add(await RunProbe.WeightsSha256(cluster, rounds[i].Checkpoint));
        }
        // Should they differ, the message says from which round and what the run did during the outage.
        Assert.True(cleanWeights.SequenceEqual(outageWeights),
            $"weights per round, clean: {string.Join(", ", cleanWeights.Select(h => h[..12]))}; after the outage: {string.Join(", ", outageWeights.Select(h => h[..12]))}\n"
            + $"metrics per round, clean: {string.Join(" | ", clean.Select(r => r.Metrics["loss"]))}; after the outage: {string.Join(" | ", rounds.Select(r => r.Metrics["loss"]))}\n"
            + string.Join("\n", cluster.Silos[0].Output.Split('\n').Where(line => line.Contains(run.Id) && !line.Contains("Execution attempt"))));
    }

    [Fact]
    public async Task AStaleActivationLosesTheCommitRaceAndStops()
    {
        var cluster = shared.Cluster;
        var client = cluster.Client();
        const string training = "train/round-1/start";
        cluster.Faults.Hold(training);
        var run = await client.StartRunAsync(new StartRunRequest { Spec = Spec() });
        await cluster.Faults.WaitUntilReachedAsync(training, TimeSpan.FromMinutes(4));

        // Another activation of the same run (a shutdown race) writes the run's state first: its write changes the ETag.
        var service = new BlobServiceClient(cluster.Azurite.ConnectionString);
        BlobClient? stateBlob = null;
        await foreach (var container in service.GetBlobContainersAsync(Azure.Storage.Blobs.Models.BlobContainerTraits.None, Azure.Storage.Blobs.Models.BlobContainerStates.None, null, CancellationToken.None))
            await foreach (var blob in service.GetBlobContainerClient(container.Name).GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, null, CancellationToken.None))
                if (container.Name != "onlinealign" && blob.Name.Contains(run.Id)) stateBlob = service.GetBlobContainerClient(container.Name).GetBlobClient(blob.Name);
        Assert.NotNull(stateBlob);
        var content = await stateBlob.DownloadContentAsync();
        await stateBlob.UploadAsync(content.Value.Content, new Azure.Storage.Blobs.Models.BlobUploadOptions { HttpHeaders = new() { ContentType = content.Value.Details.ContentType } });
        cluster.Faults.Release(training);

        // The running activation's next state write loses on the ETag: it stops instead of committing. A new
        // activation picks the run up from the winner's state and finishes it, reusing the phase already done.
        var done = await RunProbe.WaitForAsync(client, run.Id, r => r.Status == "completed", TimeSpan.FromMinutes(4));
        Assert.Contains("the persisted state changed under this activation", cluster.Silos[0].Output);
        var rounds = (await client.ListRoundsAsync(new ListRoundsRequest { RunId = run.Id })).Rounds;
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        await RunProbe.AssertEachPhaseDoneOnceAsync(cluster, run.Id, rounds: 2);
    }
}
