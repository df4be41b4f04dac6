using System.Diagnostics;
using OnlineAlign.Alignment.Health;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Execution.Files;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Execution.Specs;
using static TorchSharp.torch;

namespace OnlineAlign.Execution.InProcess;

/// <summary>
/// A run's rounds in one process, through the same phase functions (<see cref="RoundJob"/>) that the
/// cluster's worker grains run, with checkpoints in a local folder instead of blob storage. Experiments and
/// learning tests use it, so what they measure is what the cluster does; only persistence, retries and
/// sharding (which never change a result) are left out.
/// </summary>
public sealed class InProcessRun : IDisposable
{
    private readonly string _folder;
    private readonly Device _device;
    private readonly ModelCache _models;
    private readonly Dictionary<string, string> _folders = new();
    /// <summary>P_1, P_2, ...: the policy at the start of each round (P_{r+1} is round r's checkpoint).</summary>
    private readonly List<BlobRef> _policies = new();

    public RunSpec Spec { get; }

    /// <summary>Whether the model a round trained is kept in memory for the phases after (the cluster's Silo:KeepTrainedModel).</summary>
    public bool KeepTrainedModel { get; init; } = true;

    /// <summary>The checkpoints read from their folders into memory, by key, in order (round r's checkpoint: <see cref="CheckpointKey"/>).</summary>
    public IReadOnlyList<string> CheckpointLoads => _models.Loads;

    /// <summary>The checkpoints whose carried AdamW moments were read from their files, by the same keys.</summary>
    public IReadOnlyList<string> OptimizerLoads => _models.OptimizerLoads;

    /// <summary>The key (hash) that names round r's checkpoint in <see cref="CheckpointLoads"/>; round 0 is the initial policy.</summary>
    public string CheckpointKey(int round) => _policies[round].Sha256;
    /// <summary>Round 0 (the initial policy, evaluated before any round) and each round since.</summary>
    public List<RoundReport> Reports { get; } = new();

    /// <param name="pretrainedCache">where a built-in run's M0 is kept (experiments share one across their arms); null: the run's own folder</param>
    public InProcessRun(RunSpec spec, string folder, Device? device = null, string? pretrainedCache = null)
    {
        Directory.CreateDirectory(folder);
        _models = new ModelCache(pretrainedCache ?? Path.Combine(folder, "m0"));
        // There are no data roots here: what the spec names is pinned as it resolves now, checked and then read only there.
        _readRoots = ModelFile.Pin([.. SpecFiles.Named(spec).Select(f => f.Path), folder, _models.PretrainedCache]);
        List<string> problems;
        using (Confined()) problems = RunSpecMapping.Problems(spec);
        if (problems.Count > 0)
        {
            _models.Dispose();
            throw new ArgumentException("invalid run spec: " + string.Join("; ", problems));
        }
        Spec = spec;
        _folder = folder;
        _device = device ?? DeviceSetting.Resolve(spec.Device);
    }

    private readonly IReadOnlyList<string> _readRoots;

    /// <summary>Until disposed, every model file this thread opens must be one the run pinned (<see cref="ModelFile.ConfineTo"/>).</summary>
    private IDisposable Confined() =>
        ModelFile.ConfineTo(_readRoots, "the files its spec named (as resolved when the run was created) and the run's own folders");

    /// <summary>Prepares the initial policy (a built-in task's warm start) and evaluates it as round 0.</summary>
    public RoundReport Prepare(CancellationToken cancellationToken = default)
    {
        if (_policies.Count > 0) throw new InvalidOperationException("the run is prepared already");
        using var confined = Confined();
        var clock = Stopwatch.StartNew();
        string initial = Path.Combine(_folder, "round-0000");
        RoundJob.Prepare(Spec, _device, initial, _models.PretrainedCache, cancellationToken);
        return EvaluateInitial(initial, clock.Elapsed.TotalSeconds, cancellationToken);
    }

    /// <summary>
    /// Prepares round 0 from another run's instead of warm-starting again: a copy of its initial checkpoint, evaluated with
    /// this run's spec. For arms that differ only after the warm start (a control beside its arm): the warm start is most of
    /// a built-in run's time, and specs without <see cref="RunSpecMapping.WarmStartDifferences"/> give equal weights, so this is the round 0
    /// that <see cref="Prepare"/> would have trained.
    /// </summary>
    public RoundReport PrepareFrom(InProcessRun source, CancellationToken cancellationToken = default)
    {
        if (_policies.Count > 0) throw new InvalidOperationException("the run is prepared already");
        if (source._policies.Count == 0) throw new InvalidOperationException("the source run is not prepared: it has no round 0 to copy");
        var differ = RunSpecMapping.WarmStartDifferences(Spec, source.Spec);
        if (differ.Count > 0) throw new ArgumentException("the source run's round 0 was made differently: " + string.Join("; ", differ));
        var clock = Stopwatch.StartNew();
        string initial = Path.Combine(_folder, "round-0000");
        CopyFolder(source.CheckpointFolder(0), initial);
        using var confined = Confined();
        return EvaluateInitial(initial, clock.Elapsed.TotalSeconds, cancellationToken);
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    /// <summary>Round 0: the initial policy in <paramref name="initial"/>, evaluated before any round.</summary>
    private RoundReport EvaluateInitial(string initial, double prepareSeconds, CancellationToken cancellationToken)
    {
        _policies.Add(Checkpoint(initial));
        var request = Request(1) with { Round = 0, Trained = _policies[0] };
        var metrics = RoundJob.Evaluate(Context(request, cancellationToken));
        metrics["time/prepare"] = prepareSeconds;
        var report = new RoundReport(0, metrics, [], []);
        Reports.Add(report);
        return report;
    }

    /// <summary>The next round: generate, judge, pairs, train (a checkpoint in the run's folder), evaluate.</summary>
    public RoundReport RunRound(CancellationToken cancellationToken = default)
    {
        if (_policies.Count == 0) Prepare(cancellationToken);
        using var confined = Confined();
        int round = _policies.Count;
        var request = Request(round);
        var context = Context(request, cancellationToken);
        var metrics = new Dictionary<string, double>();
        var clock = Stopwatch.StartNew();
        void Lap(string phase, IReadOnlyDictionary<string, double>? phaseMetrics = null)
        {
            foreach (var (k, v) in phaseMetrics ?? new Dictionary<string, double>()) metrics[k] = v;
            metrics[$"time/{phase}"] = clock.Elapsed.TotalSeconds;
            clock.Restart();
        }

        var responses = RoundJob.Generate(new GenerationRequest
        {
            RunId = request.RunId, Spec = Spec, Round = round, Policy = request.Policy,
            PromptPositions = Enumerable.Range(0, Spec.PromptsPerRound).ToList(), Initial = request.Initial,
        }, _folders[request.Policy.Sha256], _folders[request.Initial.Sha256], _device, _models, cancellationToken);
        var groups = responses.Select(r => (IReadOnlyList<int[]>)r).ToList();
        Lap("generate");
        var judged = RoundJob.Judge(context, groups);
        Lap("judge", judged.Metrics);
        var pairs = RoundJob.Pairs(context, groups, judged);
        Lap("pairs", pairs.Metrics);
        string next = Path.Combine(_folder, $"round-{round:D4}");
        var (trained, kept, _) = RoundJob.TrainKeeping(context, pairs, next);
        using (kept)
        {
            _policies.Add(Checkpoint(next));
            // As the cluster's worker does: the phases after use the trained model (and moments), not its checkpoint read back.
            if (KeepTrainedModel) _models.Adopt(kept, _policies[^1].Sha256, _folders[request.Initial.Sha256]);
        }
        Lap("train", trained.Metrics);
        Lap("evaluate", RoundJob.Evaluate(Context(request with { Trained = _policies[^1] }, cancellationToken)));

        HealthSignals.AddLengthDrift(metrics, Reports[0].Metrics);
        var earlier = Reports.Where(r => r.Round > 0).ToList();
        var report = new RoundReport(round, metrics, RoundWarnings.For(metrics, earlier.LastOrDefault()?.Metrics, earlier.FirstOrDefault()?.Metrics),
            trained.Steps);
        Reports.Add(report);
        return report;
    }

    /// <summary>The label-free guard's verdict on the rounds so far: a caller stops when it says so (as the cluster's run does).</summary>
    public GuardVerdict Guard => GuardDecision.Decide(Spec.Guard, Reports.Select(r => (r.Round, (IReadOnlyDictionary<string, double>)r.Metrics)).ToList());

    /// <summary>The folder of round r's trained checkpoint (P_{r+1}); round 0 is the initial policy.</summary>
    public string CheckpointFolder(int round) => _folders[_policies[round].Sha256];

    /// <summary>Round r's phase request, exactly as the orchestrator builds it (P_{r-1}, P_{r-2} null where they do not exist).</summary>
    private PhaseRequest Request(int round) => new()
    {
        RunId = "local", Spec = Spec, Round = round, Policy = _policies[round - 1], Initial = _policies[0],
        TrainedFrom = round >= 2 ? _policies[round - 2] : null, TrainedFromBefore = round >= 3 ? _policies[round - 3] : null,
    };

    private RoundJob.Context Context(PhaseRequest request, CancellationToken cancellationToken) =>
        new(request, _folders, _device, _models, (_, _, _) => cancellationToken.ThrowIfCancellationRequested(), cancellationToken);

    /// <summary>A local checkpoint folder named the way the cluster names one: by a key unique to its content's round.</summary>
    private BlobRef Checkpoint(string folder)
    {
        string key = $"local:{Path.GetFullPath(folder)}";
        _folders[key] = folder;
        return new BlobRef { Path = folder, Sha256 = key };
    }

    public void Dispose() => _models.Dispose();
}
