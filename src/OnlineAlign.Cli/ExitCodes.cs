using Grpc.Core;

namespace OnlineAlign.Cli;

/// <summary>What the CLI's exit status says, so that scripts can tell a missing silo from a wrong key or an unknown run.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The run ended other than completed (failed or cancelled), or there was nothing to show.</summary>
    public const int RunNotCompleted = 1;
    /// <summary>The input was wrong: a spec field, an argument or a file (the message names it).</summary>
    public const int BadInput = 2;
    /// <summary>The silo answered with another error (the message gives its status and detail).</summary>
    public const int ApiError = 3;
    public const int NoSilo = 4;
    public const int Unauthenticated = 5;
    public const int UnknownRun = 6;
    /// <summary>Ctrl-C or SIGTERM.</summary>
    public const int Interrupted = 130;

    public const string Help =
        "Exit codes: 0 done; 1 the run failed or was cancelled; 2 bad input (the message names the field or file); " +
        "3 another API error; 4 no OnlineAlign silo answers at the address; 5 missing or wrong API key; 6 unknown run; 130 interrupted.";

    /// <summary>The exit code and the message a user can act on, for an error the silo (or its absence) gave.</summary>
    public static (int Code, string Message) For(RpcException e, string address) => e.StatusCode switch
    {
        StatusCode.Unavailable => (NoSilo,
            $"no OnlineAlign silo answers at {address} ({e.Status.Detail}): start one with `onlinealign up` " +
            "(a local cluster), or point --api (or ONLINEALIGN_API) at a running silo"),
        StatusCode.Unauthenticated => (Unauthenticated,
            $"the silo at {address} refused the API key ({e.Status.Detail}): pass the silo's key with --api-key or ONLINEALIGN_API_KEY"),
        StatusCode.NotFound => (UnknownRun, $"{e.Status.Detail} (`onlinealign runs` lists the runs)"),
        StatusCode.InvalidArgument => (BadInput, e.Status.Detail),
        _ => (ApiError, $"{e.StatusCode}: {e.Status.Detail}"),
    };
}
