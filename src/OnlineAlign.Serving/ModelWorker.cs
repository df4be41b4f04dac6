using System.Threading.Channels;
using OnlineAlign.Modeling.Generation;

namespace OnlineAlign.Serving;

/// <summary>A piece of one choice's text, or (with a finish reason) its end.</summary>
public readonly record struct ChoiceDelta(int Index, string Text, string? FinishReason, int Generated);

/// <summary>
/// The model's one thread: every request's tensor work runs here, whole and synchronous (TorchSharp dispose scopes are
/// thread-local, so tensor code never crosses an await), as the silo's ModelThread does for grains.
/// <para>Concurrent requests decode together, in waves: while the thread decodes a batch, arriving requests queue; when it
/// frees, it takes every queued request, in arrival order, that fits the batch budget (<see cref="ServeLimits.MaxBatchRows"/>,
/// <see cref="ServeLimits.MaxBatchTokens"/>; a request bigger than the budget runs alone) and decodes all their choices as
/// one batch of the round engine: one prefill (a prompt shared by a request's n choices, or by two requests, once), each
/// row with its own temperature, top_p, token limit and seed (the request's seed + choice index, never the row's
/// position), so a request's output does not depend on what it was batched with. A choice's stop sequence, or its
/// client going away, ends only its own rows (they leave the batch at the engine's next compaction). Rows do not join a
/// batch already decoding (no continuous batching): a request that arrives mid-batch waits for the next wave.</para>
/// Admission is bounded by the caller (<see cref="ServeLimits.MaxConcurrent"/>).
/// </summary>
public sealed class ModelWorker : IDisposable
{
    private sealed class Pending(GenerationRequest request, ChannelWriter<ChoiceDelta> output, CancellationToken aborted)
    {
        public GenerationRequest Request { get; } = request;
        public ChannelWriter<ChoiceDelta> Output { get; } = output;
        public CancellationToken Aborted { get; } = aborted;
        /// <summary>Choices not finished yet; at 0 the request's channel completes, while the batch may decode on.</summary>
        public int Open { get; set; } = request.N;
        public bool Done { get; set; }
    }

    private readonly object _lock = new();
    private readonly Queue<Pending> _queue = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly Thread _thread;
    private readonly ServedModel _model;
    private readonly ServeLimits _limits;
    private bool _closed;
    private int _waiting;
    private int _batches;

    /// <summary>Tests: when set, the model thread waits for it before taking each wave (requests queue meanwhile).</summary>
    internal ManualResetEventSlim? Gate { get; set; }
    /// <summary>Requests queued or generating.</summary>
    internal int Waiting => Volatile.Read(ref _waiting);
    /// <summary>Batches decoded so far (one prefill each).</summary>
    internal int Batches => Volatile.Read(ref _batches);
    /// <summary>The engine's counts over every batch (new tokens, decode row-steps), read on the model thread's behalf.</summary>
    internal GenerationStats Stats { get; } = new();
    /// <summary>Tests: called on the model thread with each token a request's row is given (so a test can act at an exact token).</summary>
    internal Action<GenerationRequest>? TokenPicked { get; set; }

    public ModelWorker(ServedModel model) : this(model, new ServeLimits()) { }

    public ModelWorker(ServedModel model, ServeLimits limits)
    {
        if (limits.MaxBatchRows < 1) throw new ArgumentException($"max batch rows must be at least 1, got {limits.MaxBatchRows}");
        if (limits.MaxBatchTokens < 1) throw new ArgumentException($"max batch tokens must be at least 1, got {limits.MaxBatchTokens}");
        _model = model;
        _limits = limits;
        _thread = new Thread(Loop) { IsBackground = true, Name = "serve-model" };
        _thread.Start();
    }

    /// <summary>Queues a request; its choices' text arrives on the returned channel as it is generated.</summary>
    public ChannelReader<ChoiceDelta> Generate(GenerationRequest request, CancellationToken aborted)
    {
        var output = Channel.CreateUnbounded<ChoiceDelta>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        Interlocked.Increment(ref _waiting);
        lock (_lock)
        {
            if (_closed)
            {
                Interlocked.Decrement(ref _waiting);
                throw new ObjectDisposedException(nameof(ModelWorker));
            }
            _queue.Enqueue(new Pending(request, output.Writer, aborted));
            Monitor.Pulse(_lock);
        }
        return output.Reader;
    }

    private void Loop()
    {
        while (true)
        {
            lock (_lock)
            {
                while (_queue.Count == 0 && !_closed) Monitor.Wait(_lock);
                if (_queue.Count == 0) return;
            }
            try { Gate?.Wait(_closing.Token); }
            catch (OperationCanceledException) { }   // disposing: what is queued still runs
            var wave = TakeWave();
            if (wave.Count > 0) Run(wave);
        }
    }

    /// <summary>The queued requests, in arrival order, that fit one batch; a request whose client is gone is dropped here.</summary>
    private List<Pending> TakeWave()
    {
        var wave = new List<Pending>();
        int rows = 0, longestPrompt = 0, longestReply = 0;
        lock (_lock)
        {
            while (_queue.TryPeek(out var next))
            {
                if (next.Aborted.IsCancellationRequested)
                {
                    _queue.Dequeue();
                    Finish(next, null);
                    continue;
                }
                int r = rows + next.Request.N;
                int prompt = Math.Max(longestPrompt, next.Request.Prompt.Length), reply = Math.Max(longestReply, next.Request.MaxTokens);
                // The KV cache holds every row for the longest prompt plus the longest reply: that is what the budget bounds.
                if (wave.Count > 0 && (r > _limits.MaxBatchRows || (long)r * (prompt + reply) > _limits.MaxBatchTokens)) break;
                wave.Add(_queue.Dequeue());
                (rows, longestPrompt, longestReply) = (r, prompt, reply);
            }
        }
        return wave;
    }

    private void Run(List<Pending> wave)
    {
        var tokenizer = _model.Tokenizer;
        var stopIds = tokenizer.Chat.StopIds.ToHashSet();
        // One row per choice, a request's choices adjacent (they share its prompt's prefill).
        var rows = wave.SelectMany(p => Enumerable.Range(0, p.Request.N)
            .Select(i => (Pending: p, Index: i, Choice: new ChoiceText(tokenizer.Decode, stopIds, p.Request.Stop, p.Request.MaxTokens)))).ToList();
        void Emit(int row, string text)
        {
            var (p, index, c) = rows[row];
            if (text.Length == 0 && c.FinishReason is null) return;
            p.Output.TryWrite(new ChoiceDelta(index, text, c.FinishReason, c.Generated));
        }
        Interlocked.Increment(ref _batches);
        try
        {
            var options = new SamplingOptions
            {
                MaxNewTokens = rows.Max(r => r.Pending.Request.MaxTokens), StopTokenIds = [.. stopIds], PadTokenId = Math.Max(0, tokenizer.PadId),
            };
            TextGenerator.Generate(_model.Model, rows.Select(r => r.Pending.Request.Prompt).ToList(), options,
                rowSeeds: rows.Select(r => r.Pending.Request.Seeds[r.Index]).ToList(),
                rowMaxNewTokens: rows.Select(r => r.Pending.Request.MaxTokens).ToList(),
                rowSampling: rows.Select(r => new RowSampling(r.Pending.Request.Temperature, r.Pending.Request.TopP)).ToList(),
                stats: Stats,
                keepRow: (row, token) =>
                {
                    var (p, _, c) = rows[row];
                    // A client gone stops costing compute: its rows end here, the others decode on.
                    if (p.Aborted.IsCancellationRequested)
                    {
                        Finish(p, null);
                        return false;
                    }
                    TokenPicked?.Invoke(p.Request);
                    Emit(row, c.Add(token));
                    if (c.FinishReason is null) return true;
                    // A stop sequence ends a choice the engine does not know about: only that row ends. A request whose
                    // choices have all ended is answered now, not when the batch ends.
                    if (--p.Open == 0) Finish(p, null);
                    return false;
                });
        }
        catch (Exception e)
        {
            foreach (var p in wave) Finish(p, e);
            return;
        }
        for (int row = 0; row < rows.Count; row++)
            if (rows[row].Choice.FinishReason is null && !rows[row].Pending.Done) Emit(row, rows[row].Choice.End());
        foreach (var p in wave) Finish(p, null);
    }

    private void Finish(Pending p, Exception? error)
    {
        if (p.Done) return;
        p.Done = true;
        p.Output.TryComplete(error);
        Interlocked.Decrement(ref _waiting);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _closed = true;
            Monitor.PulseAll(_lock);
        }
        _closing.Cancel();
        _thread.Join(TimeSpan.FromSeconds(30));
        _closing.Dispose();
    }
}
