using System.Text.Json.Nodes;

namespace OnlineAlign.Serving;

/// <summary>A model /v1/models lists: its id, and its context length where known without loading it.</summary>
public sealed record ModelCard(string Id, int? Context = null);

/// <summary>
/// A request a model accepted: what the response needs from it (the model id answered, the prompt's length in tokens, n,
/// stream and stream_options.include_usage) and its choices' text as it is generated.
/// </summary>
public sealed record ServedReply(string Model, int PromptTokens, int N, bool Stream, bool IncludeUsage, IAsyncEnumerable<ChoiceDelta> Deltas);

/// <summary>
/// Where <see cref="OpenAiEndpoints"/> find the models they serve: one loaded folder (`onlinealign serve`,
/// <see cref="SingleModelCatalog"/>) or a silo's committed rounds, each on a GPU silo behind a grain. The endpoints own the
/// HTTP side (body size, admission, whole or streamed responses, errors); a catalog owns the models.
/// </summary>
public interface IModelCatalog
{
    Task<IReadOnlyList<ModelCard>> ListAsync(CancellationToken ct);

    /// <summary>
    /// Reads and starts a completion (<paramref name="chat"/> false) or chat completion request. A refusal is a
    /// <see cref="ServeException"/> naming the field (404 for a model that is not served).
    /// </summary>
    Task<ServedReply> StartAsync(bool chat, JsonObject body, CancellationToken ct);
}

/// <summary>One loaded model on its own model thread (<see cref="ModelWorker"/>): `onlinealign serve`, and each served round on a silo.</summary>
public sealed class SingleModelCatalog(ServedModel model, ModelWorker worker, ServeLimits limits) : IModelCatalog
{
    public Task<IReadOnlyList<ModelCard>> ListAsync(CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<ModelCard>>([new ModelCard(model.Id, model.Context)]);

    public Task<ServedReply> StartAsync(bool chat, JsonObject body, CancellationToken ct)
    {
        var request = chat ? GenerationRequest.Chat(body, model, limits) : GenerationRequest.Completion(body, model, limits);
        var deltas = worker.Generate(request, ct);
        return Task.FromResult(new ServedReply(model.Id, request.Prompt.Length, request.N, request.Stream, request.IncludeUsage, deltas.ReadAllAsync(ct)));
    }
}
