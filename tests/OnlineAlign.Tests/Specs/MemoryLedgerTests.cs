using OnlineAlign.Specs;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Specs;
using static OnlineAlign.Execution.Specs.MemoryLedger;

namespace OnlineAlign.Tests.Specs;

/// <summary>Runs sharing a silo share its memory: each worker reserves its plan's peak; one that does not fit beside the others is refused.</summary>
public class MemoryLedgerTests
{
    private static readonly MemoryPlanning.DeviceBudget Gpu = new("cuda:0", 80L << 30, Cpu: false, HostBytes: 64L << 30);

    [Fact]
    public void ReservationsAddUpAndARunThatDoesNotFitBesideThemIsRefusedNamingTheirTotal()
    {
        var ledger = new MemoryLedger();
        Assert.Null(ledger.TryReserve("run-a", new Reservation(30L << 30, 10L << 30), Gpu));
        Assert.Null(ledger.TryReserve("run-b", new Reservation(30L << 30, 10L << 30), Gpu));
        Assert.Equal(new Reservation(60L << 30, 20L << 30), ledger.Reserved());

        string refusal = ledger.TryReserve("run-c", new Reservation(30L << 30, 1L << 30), Gpu)!;
        Assert.Contains("does not fit cuda:0 beside the runs already on this silo: they reserve 60.0 GiB of its 80.0 GiB", refusal);
        Assert.Contains("this run's plan peak is 30.0 GiB (device memory budget)", refusal);
        Assert.Equal(2, ledger.Holders);                                   // a refusal reserves nothing

        // A run asking again replaces its own reservation (it does not crowd itself out).
        Assert.Null(ledger.TryReserve("run-b", new Reservation(40L << 30, 10L << 30), Gpu));
        Assert.Equal(new Reservation(70L << 30, 20L << 30), ledger.Reserved());
        Assert.Equal(new Reservation(30L << 30, 10L << 30), ledger.Reserved(except: "run-b"));

        // Released (the run completed, failed or was cancelled: its worker deactivated), its share is free again.
        Assert.True(ledger.Release("run-b"));
        Assert.False(ledger.Release("run-b"));
        Assert.Null(ledger.TryReserve("run-c", new Reservation(30L << 30, 1L << 30), Gpu));
    }

    [Fact]
    public void TheHostBudgetIsHeldSeparatelyAndNamed()
    {
        var ledger = new MemoryLedger();
        Assert.Null(ledger.TryReserve("run-a", new Reservation(1L << 30, 40L << 30), Gpu));
        string refusal = ledger.TryReserve("run-b", new Reservation(1L << 30, 30L << 30), Gpu)!;
        Assert.Contains("does not fit this silo's host memory beside the runs already on it: they reserve 40.0 GiB of its 64.0 GiB", refusal);
        Assert.Contains("host memory budget, Silo:HostMemoryBytes", refusal);
        // A budget of 0 is not checked (a silo whose host memory cannot be told).
        Assert.Null(ledger.TryReserve("run-b", new Reservation(1L << 30, 30L << 30), Gpu with { HostBytes = 0 }));
    }

    [Fact]
    public void TheSpecCheckRefusesASpecThatDoesNotFitBesideTheReservedRuns()
    {
        var spec = new RunSpec { Device = "cpu" };
        var alone = new MemoryPlanning.DeviceBudget("cpu", 64L << 30, Cpu: true, HostBytes: 64L << 30);
        Assert.Empty(RunSpecMapping.Problems(spec, device: alone));
        var crowded = alone with { Reserved = new Reservation(64L << 30, 0) };
        Assert.Contains(RunSpecMapping.Problems(spec, device: crowded), p => p.StartsWith("model: the run does not fit cpu beside the runs already on this silo: they reserve 64.0 GiB"));
    }
}
