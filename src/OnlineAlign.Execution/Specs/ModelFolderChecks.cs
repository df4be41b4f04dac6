using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;

namespace OnlineAlign.Execution.Specs;

/// <summary>
/// A model folder's files checked against each other before any device work: config.json's sizes, every safetensors
/// header against them, the tokenizer's ids against vocab_size, and a reward model's vocabulary against the policy's
/// tokenizer. Each refusal names the file and the problem (InvalidDataException: a bad input, never retried).
/// </summary>
public static class ModelFolderChecks
{
    /// <summary>The folder's config, its sizes checked and its weights' headers matching it.</summary>
    public static ModelConfig Config(string folder)
    {
        var config = ModelConfig.Load(Path.Combine(folder, "config.json"));
        HfCheckpoint.CheckWeights(folder, config);
        return config;
    }

    /// <summary>The folder's tokenizer, its ids within the config's vocabulary.</summary>
    public static (ITextTokenizer, ModelConfig) Tokenizer(string folder, string chatTemplate, ModelConfig config)
    {
        var tokenizer = TokenizerLoader.Load(folder, chatTemplate);
        VocabularyCheck.Require(tokenizer, config, VocabularyCheck.Source(folder), Path.Combine(folder, "config.json"));
        return (tokenizer, config);
    }

    /// <summary>
    /// Problems with model.base_folder (M0 of a Hugging Face run; none when unset): a model folder whose config and weights
    /// agree, with the policy's vocabulary, since the implicit reward log pi_M1 - log pi_M0 scores the same token ids under both.
    /// </summary>
    public static List<string> BaseFolderProblems(string? folder, ModelConfig policyConfig)
    {
        if (string.IsNullOrEmpty(folder)) return [];
        if (!Directory.Exists(folder)) return [$"model.base_folder '{folder}' does not exist"];
        if (!File.Exists(Path.Combine(folder, "config.json"))) return [$"model.base_folder '{folder}' has no config.json"];
        try
        {
            var config = Config(folder);
            return config.VocabSize == policyConfig.VocabSize ? []
                : [$"model.base_folder '{folder}': vocab_size {config.VocabSize} is not model.hf_folder's {policyConfig.VocabSize} " +
                   "(M0 must read the policy's token ids)"];
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException or FileNotFoundException)
        {
            return ["model.base_folder: " + e.Message];
        }
    }

    /// <summary>Problems with a reward model folder that scores the policy's token ids (each starting with its spec field).</summary>
    public static List<string> RewardModelProblems(string folder, ITextTokenizer policyTokenizer, string? policyFolder)
    {
        try
        {
            var config = Config(folder);
            string head = Path.Combine(folder, RewardModel.HeadFile);
            var entries = SafeTensors.ReadHeader(head).Tensors;
            if (!entries.TryGetValue("score.weight", out var score)) throw new InvalidDataException($"{head}: no 'score.weight' tensor");
            if (!score.Shape.SequenceEqual([1L, config.HiddenSize]))
                throw new InvalidDataException($"{head}: tensor 'score.weight' has shape [{string.Join(", ", score.Shape)}], the backbone needs " +
                    $"[1, {config.HiddenSize}]");
            string tokenizerSource = string.IsNullOrEmpty(policyFolder) ? "the built-in model's byte tokenizer" : VocabularyCheck.Source(policyFolder);
            VocabularyCheck.Require(policyTokenizer, config, tokenizerSource, Path.Combine(folder, "config.json"));
            return [];
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException or FileNotFoundException)
        {
            return ["judge.reward_model_folder: " + e.Message];
        }
    }
}
