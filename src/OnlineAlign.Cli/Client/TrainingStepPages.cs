using OnlineAlign.Api.V1;

namespace OnlineAlign.Cli.Client;

/// <summary>A run's training steps, read page by page (ListSteps answers at most a page at a time).</summary>
public static class TrainingStepPages
{
    /// <param name="round">0: every committed round</param>
    public static async Task<List<TrainingStep>> AllAsync(Runs.RunsClient client, string runId, int round, CancellationToken ct)
    {
        var steps = new List<TrainingStep>();
        string token = "";
        do
        {
            var page = await client.ListStepsAsync(new ListStepsRequest { RunId = runId, Round = round, PageToken = token }, cancellationToken: ct);
            steps.AddRange(page.Steps);
            token = page.NextPageToken;
        } while (token.Length > 0);
        return steps;
    }
}
