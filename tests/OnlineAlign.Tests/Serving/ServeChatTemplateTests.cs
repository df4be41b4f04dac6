using System.Text.Json.Nodes;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Serving;
using OnlineAlign.Tests.Infrastructure;
using OpenAI;
using OpenAI.Chat;
using static TorchSharp.torch;
using ChatMessage = OnlineAlign.Modeling.Tokenization.ChatMessage;

namespace OnlineAlign.Tests.Serving;

/// <summary>A chat model folder (a ChatML Jinja template in tokenizer_config.json) served: messages go through its own template.</summary>
public class ServeChatTemplateTests
{
    // Qwen2-Instruct's template, as its tokenizer_config.json holds it.
    private const string Template =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}" +
        "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
    private static readonly string[] Specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

    /// <summary>A byte-level BPE tokenizer (GPT-2's byte table, no merges) with the ChatML tokens at 256.., a tiny model over it.</summary>
    private static string Folder()
    {
        string folder = RepositoryPaths.NewTempFolder("serve-chat");
        ByteLevelTokenizerJson.Write(folder, Specials);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), new JsonObject { ["eos_token"] = "<|im_end|>", ["chat_template"] = Template }.ToJsonString());
        using var lm = BuiltinModels.Create(BuiltinModels.Tiny with { VocabSize = 256 + Specials.Length, BosTokenId = 0, EosTokenId = 258, PadTokenId = 256 }, seed: 5);
        HfCheckpoint.Save(lm, folder);
        return folder;
    }

    [Fact]
    public async Task ChatMessagesAreRenderedWithTheFoldersOwnTemplate()
    {
        using var model = ServedModel.Load(Folder(), CPU, "chat-policy");
        Assert.Equal("chatml", model.Tokenizer.Chat.Name);
        ChatMessage[] turns = [new("user", "Hi"), new("assistant", "Hello"), new("user", "sort 2 1")];
        string rendered = ServedModel.RenderChat(model.Tokenizer.Chat, turns);
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n" +
                     "<|im_start|>user\nsort 2 1<|im_end|>\n<|im_start|>assistant\n", rendered);
        Assert.Equal(256 + 1, model.ChatPrompt(turns)[0]); // <|im_start|> is one token, and no bos comes before it

        await using var host = await ServeHost.StartAsync(model, new ServeOptions { Port = 0 });
        var client = new OpenAIClient(new System.ClientModel.ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(host.Url) }).GetChatClient("chat-policy");
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 16 };
        var chat = (await client.CompleteChatAsync([new UserChatMessage("Hi"), new AssistantChatMessage("Hello"), new UserChatMessage("sort 2 1")], options)).Value;
        // The same greedy answer as a completion of the rendered text: the template, not a plain join, made the prompt.
        using var http = new HttpClient();
        var response = await http.PostAsync(host.Url + "/completions", new StringContent(new JsonObject
        {
            ["model"] = "chat-policy", ["prompt"] = rendered, ["max_tokens"] = 16, ["temperature"] = 0,
        }.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        var completion = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        string text = completion["choices"]![0]!["text"]!.GetValue<string>();
        Assert.NotEqual("", text); // (this seed's weights answer something, so the comparison says something)
        Assert.Equal(text, chat.Content.Count == 0 ? "" : chat.Content[0].Text);
        Assert.Equal(model.ChatPrompt(turns).Length, chat.Usage.InputTokenCount);
    }
}
