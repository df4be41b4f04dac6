using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Generation;
using OnlineAlign.Modeling.Scoring;
using static TorchSharp.torch;

namespace OnlineAlign.Cli.Commands;

/// <summary>
/// `onlinealign inspect`: loads a Hugging Face model folder and prints, as JSON, logits, a greedy
/// continuation and response log-probs for given token ids, to debug a checkpoint or compare with
/// another implementation.
/// </summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model folder (config.json + safetensors)", Required = true };
        var ids = new Option<string>("--ids") { Description = "prompt token ids, comma-separated", Required = true };
        var allPositions = new Option<bool>("--all-positions") { Description = "print the logits of every position, not just the last" };
        var greedy = new Option<int>("--greedy") { Description = "greedy continuation length (0 = none)", DefaultValueFactory = _ => 16 };
        var response = new Option<string?>("--response") { Description = "response token ids to score after the prompt, comma-separated" };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto", DefaultValueFactory = _ => "cpu" };
        var command = new Command("inspect", "Print logits, a greedy continuation and response log-probs of a checkpoint as JSON")
        {
            model, ids, allPositions, greedy, response, device,
        };
        command.SetAction(parse =>
        {
            int[] prompt = ParseIds(parse.GetValue(ids)!, "--ids");
            string folder = parse.GetValue(model)!;
            using var lm = CommandFiles.Load(() => HfCheckpoint.Load(folder, DeviceSetting.Resolve(parse.GetValue(device)), ScalarType.Float32), folder);
            var output = new JsonObject
            {
                ["model"] = Path.GetFullPath(parse.GetValue(model)!),
                ["model_type"] = lm.Config.ModelType,
                ["parameters"] = lm.parameters().Sum(p => p.NumberOfElements),
                ["input_ids"] = new JsonArray(prompt.Select(x => (JsonNode)x).ToArray()),
            };
            using (var noGrad = no_grad())
            using (var scope = NewDisposeScope())
            {
                var logits = lm.forward(tensor(prompt.Select(x => (long)x).ToArray(), device: lm.Device).unsqueeze(0))[0].cpu();
                if (parse.GetValue(allPositions))
                    output["logits"] = new JsonArray(Enumerable.Range(0, prompt.Length).Select(i => (JsonNode)Floats(logits[i])).ToArray());
                else
                    output["last_logits"] = Floats(logits[prompt.Length - 1]);
            }
            int steps = parse.GetValue(greedy);
            if (steps > 0)
            {
                var continuation = TextGenerator.Generate(lm, [prompt], new SamplingOptions { MaxNewTokens = steps, Temperature = 0 })[0];
                output["greedy"] = new JsonArray(continuation.Tokens.Select(x => (JsonNode)x).ToArray());
            }
            if (parse.GetValue(response) is string responseIds)
            {
                var score = ResponseLogProbs.Score(lm, [new PromptResponse(prompt, ParseIds(responseIds, "--response"))])[0];
                output["response_logprobs"] = new JsonObject
                {
                    ["token_logprobs"] = new JsonArray(score.TokenLogProbs.Select(x => (JsonNode)x).ToArray()),
                    ["sum"] = score.Sum,
                    ["mean"] = score.Mean,
                };
            }
            Console.WriteLine(output.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        });
        return command;
    }

    private static JsonArray Floats(Tensor row) => new(row.data<float>().ToArray().Select(x => (JsonNode)x).ToArray());

    private static int[] ParseIds(string text, string option) => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select((part, i) => int.TryParse(part, out int id) ? id : throw new ArgumentException($"{option}: item {i + 1} ('{part}') is not a token id"))
        .ToArray();
}
