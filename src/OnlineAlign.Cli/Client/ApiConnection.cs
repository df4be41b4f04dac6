using System.CommandLine;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using OnlineAlign.Api.V1;

namespace OnlineAlign.Cli.Client;

/// <summary>The --api and --api-key options and a Runs client built from them.</summary>
public static class ApiConnection
{
    public static readonly Option<string> Address = new("--api")
    {
        Description = "gRPC address of a silo (env ONLINEALIGN_API)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ONLINEALIGN_API") ?? "http://127.0.0.1:5080",
        Recursive = true,
    };

    public static readonly Option<string?> Key = new("--api-key")
    {
        Description = "API key, sent as 'authorization: Bearer <key>' (env ONLINEALIGN_API_KEY)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ONLINEALIGN_API_KEY"),
        Recursive = true,
    };

    public static Runs.RunsClient Client(ParseResult parse) => Client(parse.GetValue(Address)!, parse.GetValue(Key));

    public static Runs.RunsClient Client(string address, string? key)
    {
        var channel = GrpcChannel.ForAddress(address);
        if (string.IsNullOrEmpty(key)) return new Runs.RunsClient(channel);
        var invoker = channel.Intercept(metadata => { metadata.Add("authorization", "Bearer " + key); return metadata; });
        return new Runs.RunsClient(invoker);
    }
}
