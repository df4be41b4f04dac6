using System.Collections.Concurrent;
using System.Threading.Channels;
using OnlineAlign.Modeling.Generation;

namespace OnlineAlign.Serving;

/// <summary>A piece of one choice's text, or (with a finish reason) its end.</summary>
public readonly record struct ChoiceDelta(int Index, string Text, string? FinishReason, int Generated);

/// <summary>
/// The model's one thread: every request's tensor work runs here, whole and synchronous (TorchSharp dispose scopes are
/// thread-local, so tensor code never crosses an await), as the silo's ModelThread does for grains. Requests run one at a
/// time in arrival order; a request's n choices are decoded together in one batch of the round engine (one prefill of the
/// prompt). Requests are not batched with each other: each may ask for its own temperature and top_p, which the engine
/// takes per call. Admission is bounded by the caller (<see cref="ServeLimits.MaxConcurrent"/>).
/// </summary>
public sealed class ModelWorker : IDisposable
{
    private readonly BlockingCollection<Action> _jobs = new();
    private readonly Thread _thread;
    private readonly ServedModel _model;
    private int _waiting;

    /// <summary>Tests: when set, the model thread waits for it before each request (a request held in progress).</summary>
    internal ManualResetEventSlim? Gate { get; set; }
    /// <summary>Requests queued or generating.</summary>
    internal int Waiting => Volatile.Read(ref _waiting);

    public ModelWorker(ServedModel model)
    {
        _model = model;
        _thread = new Thread(() =>
        {
            foreach (var job in _jobs.GetConsumingEnumerable()) job();
        }) { IsBackground = true, Name = "serve-model" };
        _thread.Start();
    }

    /// <summary>Queues a request; its choices' text arrives on the returned channel as it is generated.</summary>
    public ChannelReader<ChoiceDelta> Generate(GenerationRequest request, CancellationToken aborted)
    {
        var output = Channel.CreateUnbounded<ChoiceDelta>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        Interlocked.Increment(ref _waiting);
        // Queuing is never cancelled (the job observes the token itself and keeps _waiting balanced).
        _jobs.Add(() =>
        {
            try { Gate?.Wait(aborted); Run(request, output.Writer, aborted); }
            catch (OperationCanceledException) { output.Writer.TryComplete(); }
            finally { Interlocked.Decrement(ref _waiting); }
        }, CancellationToken.None);
        return output.Reader;
    }

    private void Run(GenerationRequest request, ChannelWriter<ChoiceDelta> output, CancellationToken aborted)
    {
        var tokenizer = _model.Tokenizer;
        var stopIds = tokenizer.Chat.StopIds.ToHashSet();
        var choices = Enumerable.Range(0, request.N).Select(_ => new ChoiceText(tokenizer.Decode, stopIds, request.Stop, request.MaxTokens)).ToArray();
        using var done = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        void Emit(int i, string text)
        {
            var c = choices[i];
            if (text.Length > 0 || c.FinishReason is not null) output.TryWrite(new ChoiceDelta(i, text, c.FinishReason, c.Generated));
        }
        try
        {
            var options = new SamplingOptions
            {
                MaxNewTokens = request.MaxTokens, Temperature = request.Temperature, TopP = request.TopP,
                StopTokenIds = [.. stopIds], PadTokenId = Math.Max(0, tokenizer.PadId),
            };
            TextGenerator.Generate(_model.Model, Enumerable.Repeat(request.Prompt, request.N).ToList(), options, request.Seeds,
                cancellationToken: done.Token, onToken: (row, token) =>
                {
                    var c = choices[row];
                    if (c.FinishReason is not null) return;
                    Emit(row, c.Add(token));
                    // A stop sequence ends a choice the engine does not know about; once all are over, stop decoding.
                    if (choices.All(x => x.FinishReason is not null)) done.Cancel();
                });
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested) { }
        catch (Exception e)
        {
            output.TryComplete(e);
            return;
        }
        for (int i = 0; i < choices.Length; i++)
            if (choices[i].FinishReason is null) Emit(i, choices[i].End());
        output.TryComplete();
    }

    public void Dispose()
    {
        _jobs.CompleteAdding();
        _thread.Join(TimeSpan.FromSeconds(30));
        _jobs.Dispose();
    }
}
