namespace OnlineAlign.Tests.Infrastructure;

/// <summary>The silo log entries a failed cluster test prints (SiloLogTail): one line per console-logger entry.</summary>
public class SiloLogTailTests
{
    [Fact]
    public void EachConsoleLoggerEntryBecomesOneLineAndTheSilosOwnLinesStay()
    {
        const string output = "info: Orleans.Runtime.Silo[100403]\n      -------------- Initializing silo\n" +
                              "OnlineAlign silo 'control' up: gRPC on 127.0.0.1:1\n" +
                              "info: OnlineAlign.Grains.Runs.RunGrain[0]\n      run r round 1: first line\n      second line\n" +
                              "warn: Orleans.Runtime.Messaging.Connection[816022561]\r\n      Connection reset\r\n\n";
        Assert.Equal(
            [
                "info Orleans.Runtime.Silo: -------------- Initializing silo",
                "OnlineAlign silo 'control' up: gRPC on 127.0.0.1:1",
                "info OnlineAlign.Grains.Runs.RunGrain: run r round 1: first line second line",
                "warn Orleans.Runtime.Messaging.Connection: Connection reset",
            ],
            SiloLogTail.Entries(output));
    }

    [Fact]
    public void AnEntrySaidAgainAndAgainIsShownOnceWithItsCount() =>
        Assert.Equal(["a", "b (x3)", "a"], SiloLogTail.Collapsed(["a", "b", "b", "b", "a"]));

    [Fact]
    public void TheReportEndsWithTheFailureSoThatALogReadFromItsEndShowsIt()
    {
        string report = SiloLogTail.Report("--- silo 0 (pid 1): last 1 of 1 entries\ninfo x: y\n",
            new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.Unavailable, new string('z', 5000))));
        var last = report.Split('\n')[^1];
        Assert.StartsWith("--- the test failed with Grpc.Core.RpcException: Status(StatusCode=\"Unavailable\"", last);
        Assert.Equal("--- the test failed with ".Length + 2000, last.Length);
        Assert.StartsWith("--- silo 0 (pid 1)", report);
    }
}
