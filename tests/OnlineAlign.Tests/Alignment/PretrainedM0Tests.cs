using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Contracts;
using OnlineAlign.Execution.Phases;
using OnlineAlign.Execution.Specs;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using OnlineAlign.Tests.Infrastructure;

namespace OnlineAlign.Tests.Alignment;

/// <summary>CREAM with a meaningful M0: a built-in model pretrained on the task's unformatted text; a Hugging Face run's model.base_folder.</summary>
public class PretrainedM0Tests
{
    private static readonly ITextTokenizer Tokenizer = new ByteTokenizer();

    [Theory]
    [InlineData("sort")]
    [InlineData("add")]
    [InlineData("reverse")]
    public void PretrainingDocumentsAreTheTasksTextWithoutItsInstructionFromTheTrainingPart(string name)
    {
        var task = BuiltinTasks.ByName(name);
        var documents = WarmStart.PretrainDocuments(task, Tokenizer, 50, seed: 4);
        var items = task.Prompts(50, 4, "pretrain");
        Assert.Equal(50, documents.Count);
        for (int i = 0; i < items.Count; i++)
        {
            Assert.Equal(PromptStreams.Train, PromptStreams.Of(items[i].Prompt));
            Assert.Equal([Tokenizer.BosId], documents[i].Prompt);          // next-token loss over the whole document
            string text = Tokenizer.Decode(documents[i].Response);
            Assert.DoesNotContain("=", text);
            Assert.False(text.StartsWith(name[..3], StringComparison.Ordinal), text);  // no task word
            Assert.EndsWith(" " + items[i].Answer, text);
            Assert.Equal(Tokenizer.Chat.EndOfResponse, documents[i].Response[^1]);
        }
    }

    [Fact]
    public void PretrainingLearnsTheTextAndTheSameSeedRebuildsTheSameM0()
    {
        var task = new SortDigitsTask();
        var settings = new WarmStart.Settings(BatchSize: 16, Demonstrations: 200, PretrainSteps: 40);
        using var a = WarmStart.Pretrained(BuiltinModels.Tiny, Tokenizer, task, settings, seed: 2);
        using var b = WarmStart.Pretrained(BuiltinModels.Tiny, Tokenizer, task, settings, seed: 2);
        using var fresh = BuiltinModels.Create(BuiltinModels.Tiny, 2);
        var sb = b.state_dict();
        foreach (var (name, t) in a.state_dict()) Assert.True(t.equal(sb[name]).all().item<bool>(), name);
        // Lower loss on documents it never saw (another seed's) than the initialisation it started from.
        var held = WarmStart.PretrainDocuments(task, Tokenizer, 64, seed: 99);
        double Loss(DecoderLM m) => -OnlineAlign.Modeling.Scoring.ResponseLogProbs.Score(m, held, 16).Sum(o => o.Sum)
            / held.Sum(d => d.Response.Length);
        Assert.True(Loss(a) < Loss(fresh) - 1, $"per-token loss {Loss(fresh):F2} at initialisation, {Loss(a):F2} after pretraining");
    }

    [Fact]
    public void AHuggingFaceRunsM0IsItsBaseFolderOfTheSameVocabulary()
    {
        string root = RepositoryPaths.NewTempFolder("base-folder");
        string policy = Path.Combine(root, "policy"), @base = Path.Combine(root, "base"), wide = Path.Combine(root, "wide");
        using (var m = BuiltinModels.Create(BuiltinModels.Tiny, 1)) HfCheckpoint.Save(m, policy, Tokenizer.HfFiles());
        using (var m = BuiltinModels.Create(BuiltinModels.Tiny, 2)) HfCheckpoint.Save(m, @base, Tokenizer.HfFiles());
        using (var m = BuiltinModels.Create(BuiltinModels.Tiny with { VocabSize = 300 }, 2)) HfCheckpoint.Save(m, wide, Tokenizer.HfFiles());
        var spec = new RunSpec { Model = new() { HfFolder = policy, BaseFolder = @base }, Prompts = new() { Task = "sort" } };

        Assert.DoesNotContain(RunSpecMapping.Problems(spec), p => p.Contains("base_folder", StringComparison.Ordinal));
        Assert.Contains(RunSpecMapping.Problems(spec with { Model = spec.Model with { BaseFolder = wide } }),
            p => p.StartsWith($"model.base_folder '{wide}': vocab_size 300 is not model.hf_folder's 259", StringComparison.Ordinal));
        Assert.Contains(RunSpecMapping.Problems(spec with { Model = spec.Model with { BaseFolder = Path.Combine(root, "none") } }),
            p => p == $"model.base_folder '{Path.Combine(root, "none")}' does not exist");
        Assert.Contains(RunSpecMapping.Problems(new RunSpec { Model = new() { BaseFolder = @base } }, countsOnly: true),
            p => p.StartsWith("model.base_folder needs model.hf_folder", StringComparison.Ordinal));

        // Like hf_folder, base_folder is read only under the silo's data roots.
        var roots = new OnlineAlign.Execution.Files.DataRoots([policy]);
        Assert.Contains(RunSpecMapping.Problems(spec, roots: roots), p => p.StartsWith($"model.base_folder '{@base}' is not under this silo's data roots",
            StringComparison.Ordinal));
        Assert.DoesNotContain(RunSpecMapping.Problems(spec, roots: new OnlineAlign.Execution.Files.DataRoots([root])),
            p => p.Contains("base_folder", StringComparison.Ordinal));

        using var m0 = RoundJob.BeforeWarmStart(spec, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache)!;
        using var saved = HfCheckpoint.Load(@base, TorchSharp.torch.CPU);
        var expected = saved.state_dict();
        foreach (var (name, t) in m0.state_dict()) Assert.True(t.equal(expected[name]).all().item<bool>(), name);
        Assert.Null(RoundJob.BeforeWarmStart(spec with { Model = spec.Model with { BaseFolder = null } }, TorchSharp.torch.CPU, RepositoryPaths.PretrainedCache));
    }
}
