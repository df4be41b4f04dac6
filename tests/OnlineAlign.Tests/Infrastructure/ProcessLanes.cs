namespace OnlineAlign.Tests.Infrastructure;

/// <summary>
/// The xUnit collections of the test classes that start processes (silos, Azurite, the CLI, a browser). Tests in one
/// lane run one after another; the two lanes run beside each other, so one lane's waits (a silo starting, a kill being
/// detected, storage coming back) overlap the other's work. Summed over a full run these tests take about 26 minutes,
/// at 30 to 90 % of the 2 cores (measured per class), so one lane alone made most of the suite's wall clock.
/// Classes are split so the lanes take about as long (their times in a full run, docs/development.md); what a class
/// shares across processes by a fixed name (the CLI's `local` metrics port) stays within one class.
/// </summary>
public static class ProcessLanes
{
    public const string A = "processes";
    public const string B = "processes-b";
    public static readonly string[] All = [A, B];
}
