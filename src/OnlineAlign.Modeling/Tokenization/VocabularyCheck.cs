namespace OnlineAlign.Modeling.Tokenization;

/// <summary>
/// A tokenizer and the models its ids go to must agree: an id at or past a model's vocab_size indexes past its
/// embedding, which on CUDA is a device-side assert that poisons the process for every run on it. Checked at spec check
/// and again before any device work (the folders may have changed in between).
/// </summary>
public static class VocabularyCheck
{
    /// <param name="tokenizerSource">the tokenizer's file (named in the problem)</param>
    /// <param name="configSource">the config.json of the model the ids go to</param>
    public static string? Problem(ITextTokenizer tokenizer, ModelConfig config, string tokenizerSource, string configSource) =>
        tokenizer.VocabSize <= config.VocabSize ? null
        : $"{tokenizerSource}: the tokenizer's ids go up to {tokenizer.VocabSize - 1}, but {configSource} has vocab_size {config.VocabSize} " +
          "(an id at or past vocab_size cannot be embedded)";

    public static void Require(ITextTokenizer tokenizer, ModelConfig config, string tokenizerSource, string configSource)
    {
        if (Problem(tokenizer, config, tokenizerSource, configSource) is { } problem) throw new InvalidDataException(problem);
    }

    /// <summary>The file a folder's tokenizer comes from: tokenizer.json, or the byte tokenizer's marker.</summary>
    public static string Source(string folder) =>
        File.Exists(Path.Combine(folder, "tokenizer.json")) ? Path.Combine(folder, "tokenizer.json") : Path.Combine(folder, "tokenizer_config.json");
}
