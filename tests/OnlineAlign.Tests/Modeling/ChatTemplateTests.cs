using OnlineAlign.Specs;
using System.Text.Json.Nodes;
using OnlineAlign.Alignment.Training;
using OnlineAlign.Contracts;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Modeling;

/// <summary>Prompt formats from a model folder's own chat template, as transformers' apply_chat_template lays them out.</summary>
public class ChatTemplateTests
{
    // The templates as Qwen2-7B-Instruct's and Meta-Llama-3-8B-Instruct's tokenizer_config.json hold them.
    private const string Qwen2Template =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}" +
        "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
    private const string Llama3Template =
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}" +
        "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
    private const string MistralTemplate = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}";

    private static readonly string[] Specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];

    /// <summary>A byte-level BPE folder (GPT-2 byte table, no merges) with the chat special tokens at 256.., and the given configs.</summary>
    private static string Folder(string? template, string eos, string? bos = null, JsonNode? generationEos = null)
    {
        string folder = RepositoryPaths.NewTempFolder("chat");
        ByteLevelTokenizerJson.Write(folder, Specials);
        var config = new JsonObject { ["eos_token"] = eos };
        if (bos is not null) config["bos_token"] = bos;
        if (template is not null) config["chat_template"] = template;
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString());
        if (generationEos is not null) File.WriteAllText(Path.Combine(folder, "generation_config.json"), new JsonObject { ["eos_token_id"] = generationEos }.ToJsonString());
        return folder;
    }

    private static int Id(string special) => 256 + Array.IndexOf(Specials, special);

    [Fact]
    public void Qwen2TemplateIsChatMLWithItsDefaultSystemTurnAndStopsAtImEnd()
    {
        var tokenizer = TokenizerLoader.Load(Folder(Qwen2Template, "<|im_end|>", generationEos: new JsonArray(Id("<|im_end|>"), Id("<|endoftext|>"))));
        Assert.Equal("chatml", tokenizer.Chat.Name);
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nsort 3 1 2<|im_end|>\n<|im_start|>assistant\n",
            tokenizer.Chat.Format("sort 3 1 2"));
        var ids = Examples.PromptIds(tokenizer, "sort 3 1 2");
        Assert.Equal(Id("<|im_start|>"), ids[0]); // no bos (Qwen2 has none), the marker one token
        Assert.Equal(3, ids.Count(i => i == Id("<|im_start|>")));
        Assert.Equal(Id("<|im_end|>"), Examples.ResponseIds(tokenizer, "1 2 3")[^1]);
        Assert.Equal(new[] { Id("<|im_end|>"), Id("<|endoftext|>") }.Order(), tokenizer.Chat.StopIds.Order());
    }

    [Fact]
    public void Llama3TemplateStartsWithBosAndStopsAtEotAndEveryGenerationEos()
    {
        var tokenizer = TokenizerLoader.Load(Folder(Llama3Template, "<|end_header_id|>", bos: "<|begin_of_text|>", generationEos: new JsonArray(Id("<|endoftext|>"), Id("<|eot_id|>"))));
        Assert.Equal("llama3", tokenizer.Chat.Name);
        var ids = Examples.PromptIds(tokenizer, "Hi");
        Assert.Equal([Id("<|begin_of_text|>"), Id("<|start_header_id|>")], ids[..2]);
        Assert.Equal("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", tokenizer.Chat.Format("Hi"));
        Assert.Equal(Id("<|eot_id|>"), tokenizer.Chat.EndOfResponse);
        Assert.Equal(new[] { "<|eot_id|>", "<|end_header_id|>", "<|endoftext|>" }.Select(Id).Order(), tokenizer.Chat.StopIds.Order());
    }

    [Fact]
    public void TheTemplateComesFromChatTemplateJinjaOrTheDefaultOfANamedList()
    {
        string folder = Folder(null, "<|im_end|>");
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["chat_template"] = new JsonArray(
            new JsonObject { ["name"] = "tool_use", ["template"] = "{{ raise_exception('tools only') }}" },
            new JsonObject { ["name"] = "default", ["template"] = Qwen2Template });
        File.WriteAllText(configPath, config.ToJsonString());
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            TokenizerLoader.Load(folder).Chat.Format("Hi"));

        // chat_template.jinja, where present, is the template (as transformers reads it); a system turn is passed through.
        File.WriteAllText(Path.Combine(folder, "chat_template.jinja"),
            "{% for m in messages %}\n  {{- '<|im_start|>' + m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}\n{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}\n");
        var tokenizer = TokenizerLoader.Load(folder);
        Assert.Equal("<|im_start|>system\nBe brief<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", tokenizer.Chat.Format("Hi", "Be brief"));
        Assert.Equal(Id("<|im_end|>"), tokenizer.Chat.EndOfResponse);
    }

    [Fact]
    public void AnyTemplateIsRunAndOneThatCannotRunIsRefusedUnlessTheSpecNamesAFormat()
    {
        // A template of no known family is run; it writes nothing after a reply, so the turn ends at eos.
        var mistral = TokenizerLoader.Load(Folder(MistralTemplate, "<|endoftext|>"));
        Assert.Equal("template", mistral.Chat.Name);
        Assert.Equal("[INST] sort 3 1 2 [/INST]", mistral.Chat.Format("sort 3 1 2"));
        Assert.Equal(Id("<|endoftext|>"), mistral.Chat.EndOfResponse);

        // One that does not parse, or refuses a plain user turn, is refused naming the file, the line and the setting.
        string folder = Folder("{% for message in messages %}\n{{ message['content'] }}", "<|endoftext|>");
        var error = Assert.Throws<NotSupportedException>(() => TokenizerLoader.Load(folder));
        Assert.Contains("tokenizer_config.json", error.Message);
        Assert.Contains("line 2: missing {% endfor %}", error.Message);
        Assert.Contains("model.chat_template", error.Message);
        var raised = Assert.Throws<NotSupportedException>(() => TokenizerLoader.Load(Folder("{{ raise_exception('A system turn is required') }}", "<|endoftext|>")));
        Assert.Contains("the template raised an error: A system turn is required", raised.Message);
        Assert.Equal("plain", TokenizerLoader.Load(folder, "plain").Chat.Name);
        Assert.Equal("chatml", TokenizerLoader.Load(folder, "chatml").Chat.Name);
        Assert.Equal("plain", TokenizerLoader.Load(Folder(null, "<|endoftext|>")).Chat.Name); // a base model: no template, plain text

        // In a spec, the same refusal names the field, before anything runs.
        string model = RepositoryPaths.NewTempFolder("chat-model");
        foreach (var file in Directory.GetFiles(RepositoryPaths.Fixture("hf", "llama-tiny"))) File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        foreach (var file in Directory.GetFiles(folder)) File.Copy(file, Path.Combine(model, Path.GetFileName(file)), overwrite: true);
        var spec = new RunSpec { Model = new() { HfFolder = model }, Prompts = new() { JsonlPath = null }, Device = "cpu", Judge = new() { Kind = "implicit" } };
        Assert.Contains(RunSpecMapping.Problems(spec), p => p.Contains("model.chat_template") && p.Contains("the chat template cannot be run"));
        Assert.DoesNotContain(RunSpecMapping.Problems(spec with { Model = spec.Model with { ChatTemplate = "plain" }}), p => p.Contains("chat"));
        Assert.Contains(RunSpecMapping.Problems(spec with { Model = spec.Model with { ChatTemplate = "vicuna" }}), p => p.StartsWith("model.chat_template 'vicuna' is not one of", StringComparison.Ordinal));
        Assert.Contains(RunSpecMapping.Problems(new RunSpec { Model = new() { ChatTemplate = "chatml" }}), p => p.Contains("built-in models read plain text"));
    }
}
