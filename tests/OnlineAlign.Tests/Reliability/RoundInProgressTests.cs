using OnlineAlign.Contracts;
using OnlineAlign.Grains.Runs;

namespace OnlineAlign.Tests.Reliability;

/// <summary>
/// The round and phase status reports come from the run's recorded progress: a state read back after a restart names the
/// round that was started, not the last one whose phase was entered before the last write (CrashTests checks it through gRPC).
/// </summary>
public class RoundInProgressTests
{
    [Fact]
    public void AStateReadBackNamesTheRoundInProgressAndItsNextPhase()
    {
        var output = new PhaseOutput();
        // As written when round 1 started: the last phase entered was round 0's evaluation.
        var state = new RunState { Round = 0, Phase = "evaluate", Current = new RoundProgress { Round = 1 } };
        Assert.Equal((1, "generate"), state.InProgress());
        state.Current.Generations = [output];
        Assert.Equal((1, "judge"), state.InProgress());
        state.Current.Judged = output;
        Assert.Equal((1, "pairs"), state.InProgress());
        state.Current.Pairs = output;
        Assert.Equal((1, "train"), state.InProgress());
        state.Current.Trained = output;
        Assert.Equal((1, "evaluate"), state.InProgress());
        // Between rounds (committed) and before round 1 (prepare, round 0's evaluation): what was entered.
        Assert.Equal((1, "committed"), new RunState { Round = 1, Phase = "committed" }.InProgress());
        Assert.Equal((0, "prepare"), new RunState { Round = 0, Phase = "prepare" }.InProgress());
    }
}
