using System.Collections.Concurrent;

namespace OnlineAlign.Grains.Runtime;

/// <summary>
/// One dedicated OS thread for a model's tensor work. TorchSharp dispose scopes are thread-local, so
/// tensor code must never straddle an await; grains hand whole synchronous jobs to this thread and
/// await the result. Jobs never touch grain fields: they get their inputs as arguments.
/// </summary>
public sealed class ModelThread : IDisposable
{
    private readonly BlockingCollection<Action> _jobs = new();
    private readonly Thread _thread;

    public ModelThread(string name)
    {
        _thread = new Thread(() =>
        {
            foreach (var job in _jobs.GetConsumingEnumerable()) job();
        }) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public Task<T> Run<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _jobs.Add(() =>
        {
            try { done.SetResult(work()); }
            catch (Exception e) { done.SetException(e); }
        });
        return done.Task;
    }

    public void Dispose()
    {
        _jobs.CompleteAdding();
        _thread.Join(TimeSpan.FromSeconds(30));
        _jobs.Dispose();
    }
}
