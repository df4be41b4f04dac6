using Microsoft.Extensions.DependencyInjection;
using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runs;
using Orleans.Serialization;

namespace OnlineAlign.Tests.Reliability;

/// <summary>A run saved by a version whose state had another shape is never driven by this one, and says why.</summary>
public class RunStateFormatTests
{
    [Fact]
    public void AStateWithoutTheCurrentFormatIsRefusedWithItsReason()
    {
        // A state written before the format field existed reads as format 0 (Orleans skips the fields it does not know).
        var old = new RunState { Spec = new RunSpec(), Rounds = [new RoundRecord { Round = 1 }] };
        var problem = old.FormatProblem("r1");
        Assert.NotNull(problem);
        Assert.Contains("run 'r1' was saved in state format 0", problem);
        Assert.Contains($"this one reads format {RunState.CurrentFormat}", problem);
        Assert.Contains("untouched in storage", problem);

        Assert.Null(new RunState { Spec = new RunSpec(), Format = RunState.CurrentFormat }.FormatProblem("r1"));
        Assert.Null(new RunState().FormatProblem("r1")); // no run at all: nothing to refuse
    }

    [Fact]
    public void AParentSavedInAnotherFormatCannotBeForked()
    {
        // Its spec would read as defaults where this version does not know the fields, so the fork is refused, naming why.
        var parent = new RunStatus { RunId = "old", Spec = new RunSpec(), OtherFormat = new RunState { Spec = new RunSpec() }.FormatProblem("old") };
        var refusal = Assert.Throws<Grpc.Core.RpcException>(() =>
            OnlineAlign.Silo.Api.RunForks.Spec(parent, new OnlineAlign.Api.V1.ForkFrom { RunId = "old", Round = 1 }));
        Assert.Equal(Grpc.Core.StatusCode.FailedPrecondition, refusal.StatusCode);
        Assert.StartsWith("fork_from.run_id: run 'old' was saved in state format 0", refusal.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void TheFormatTravelsWithTheState()
    {
        using var services = new ServiceCollection().AddSerializer().BuildServiceProvider();
        var serializer = services.GetRequiredService<Serializer>();
        var state = new RunState { Spec = new RunSpec(), Format = RunState.CurrentFormat };
        var copy = serializer.Deserialize<RunState>(serializer.SerializeToArray(state));
        Assert.Equal(RunState.CurrentFormat, copy!.Format);
        Assert.Null(copy.FormatProblem("r1"));
    }
}
