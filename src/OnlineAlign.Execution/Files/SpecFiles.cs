using OnlineAlign.Contracts;
using OnlineAlign.Specs;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Execution.Specs;

namespace OnlineAlign.Execution.Files;

/// <summary>
/// The files a run spec names, checked where they are read: under the silo's data roots, regular files only,
/// and no larger than the limits (so a prompt set or a tokenizer cannot exhaust a silo's memory).
/// </summary>
public static class SpecFiles
{
    /// <summary>The spec's file fields that are set.</summary>
    public static IEnumerable<(string Field, string Path)> Named(RunSpec s) =>
        new[] { ("model.hf_folder", s.Model.HfFolder), ("model.base_folder", s.Model.BaseFolder), ("prompts.jsonl_path", s.Prompts.JsonlPath),
                ("judge.reward_model_folder", s.Judge.RewardModelFolder), ("guard.pairwise_jsonl", s.Guard.PairwiseJsonl),
                ("model.lora.adapter_folder", s.Model.Lora?.AdapterFolder),
                ("judge.api_key_file", s.Judge.Kind == "remote" ? s.Judge.ApiKeyFile : null) }
            .Where(f => !string.IsNullOrEmpty(f.Item2)).Select(f => (f.Item1, f.Item2!));

    /// <summary>Everything wrong with the spec's files as this silo sees them, each naming its field.</summary>
    public static List<string> Problems(RunSpec s, DataRoots roots, SpecLimits limits)
    {
        var problems = new List<string>();
        foreach (var (field, path) in Named(s))
        {
            try
            {
                string real = roots.Resolve(field, path);
                if (field is "prompts.jsonl_path" or "guard.pairwise_jsonl") CheckFile(field, path, real, limits.PromptFileBytes);
                else if (field == "judge.api_key_file") CheckFile(field, path, real, RemoteJudgeKey.MaxFileBytes, "RemoteJudgeKey.MaxFileBytes");
                else CheckFolder(field, path, roots, limits);
            }
            catch (SpecFileException e) { problems.Add(e.Message); }
        }
        // Not a file, but read where the files are: the key's environment variable is the worker silo's.
        if (RemoteJudgeKey.VariableProblem(s.Judge) is { } unset) problems.Add(unset);
        return problems;
    }

    /// <summary>Throws <see cref="SpecFileException"/> with every problem, if there is one.</summary>
    public static void Require(RunSpec s, DataRoots roots, SpecLimits limits)
    {
        var problems = Problems(s, roots, limits);
        if (problems.Count > 0) throw new SpecFileException(string.Join("; ", problems));
    }

    private static void CheckFile(string field, string path, string real, long maxBytes, string limitName = "Limits:PromptFileBytes")
    {
        if (!DataRoots.IsRegularFile(real))
            throw new SpecFileException(Directory.Exists(real) ? $"{field} '{path}' is a folder, not a file"
                : File.Exists(real) ? $"{field} '{path}' is not a regular file" : $"{field} '{path}' does not exist");
        long size = new FileInfo(real).Length;
        if (size > maxBytes) throw new SpecFileException($"{field} '{path}' is {size} bytes; the limit is {maxBytes} ({limitName})");
    }

    /// <summary>A model folder: every file in it regular and under the roots (Hugging Face caches link to blobs), its JSON and text files capped.</summary>
    private static void CheckFolder(string field, string path, DataRoots roots, SpecLimits limits)
    {
        string real = roots.Resolve(field, path);
        if (!Directory.Exists(real))
            throw new SpecFileException(File.Exists(real) ? $"{field} '{path}' is a file, not a folder" : $"{field} '{path}' does not exist");
        int count = 0;
        foreach (var entry in Directory.EnumerateFileSystemEntries(real))
        {
            if (++count > MaxFolderEntries) throw new SpecFileException($"{field} '{path}' holds more than {MaxFolderEntries} entries");
            string name = Path.GetFileName(entry);
            // Links leading out of the roots are refused for sub-folders too; a sub-folder is never read (shard names are plain file names).
            string file = roots.Resolve($"{field} file {name}", entry);
            if (Directory.Exists(file)) continue;
            if (!DataRoots.IsRegularFile(file)) throw new SpecFileException($"{field} '{path}': {name} is not a regular file");
            if (Path.GetExtension(name) is ".json" or ".txt" or ".jinja" && new FileInfo(file).Length > limits.ModelJsonBytes)
                throw new SpecFileException($"{field} '{path}': {name} is {new FileInfo(file).Length} bytes; the limit is {limits.ModelJsonBytes} " +
                    $"(Limits:ModelJsonBytes)");
        }
        CheckShards(field, path, real);
    }

    private const int MaxFolderEntries = 10_000;

    /// <summary>
    /// The shards a sharded folder's index names: plain file names of the folder (so checked above like every entry),
    /// present and regular; an index naming ../x, /etc/hostname or a path through a sub-folder is refused.
    /// </summary>
    private static void CheckShards(string field, string path, string real)
    {
        if (File.Exists(Path.Combine(real, HfCheckpoint.WeightsFile)) || !File.Exists(Path.Combine(real, HfCheckpoint.IndexFile))) return;
        IReadOnlyList<string> shards;
        try { shards = HfCheckpoint.WeightFiles(real); }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException) { throw new SpecFileException($"{field} '{path}': {e.Message}"); }
        foreach (var shard in shards)
        {
            string name = Path.GetFileName(shard);
            if (!Path.Exists(shard))
                throw new SpecFileException($"{field} '{path}': {HfCheckpoint.IndexFile} names shard '{name}', which is not in the folder");
            if (!DataRoots.IsRegularFile(shard))
                throw new SpecFileException($"{field} '{path}': {HfCheckpoint.IndexFile} names shard '{name}', which is not a regular file");
        }
    }

    /// <summary>
    /// A text file's lines, refusing a line longer than <paramref name="maxCharacters"/> before it is held in
    /// memory whole (File.ReadLines would read a 1 GB line into one string). Opened as a model file is (<see cref="ModelFile.OpenRead"/>):
    /// a regular file only, and under the reader's confinement, if any.
    /// </summary>
    public static IEnumerable<string> ReadLines(string path, int maxCharacters)
    {
        using var reader = new StreamReader(ModelFile.OpenRead(path));
        var line = new System.Text.StringBuilder();
        var buffer = new char[1 << 16];
        int lineNumber = 1, read;
        while ((read = reader.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            for (int i = 0; i < read; i++)
            {
                if (buffer[i] != '\n') continue;
                line.Append(buffer, start, i - start);
                if (line.Length > maxCharacters) throw TooLong(path, lineNumber, maxCharacters);
                yield return line.ToString().TrimEnd('\r');
                line.Clear();
                lineNumber++;
                start = i + 1;
            }
            line.Append(buffer, start, read - start);
            if (line.Length > maxCharacters) throw TooLong(path, lineNumber, maxCharacters);
        }
        if (line.Length > 0) yield return line.ToString().TrimEnd('\r');
    }

    private static InvalidDataException TooLong(string path, int line, int max) =>
        new($"{path}:{line}: the line is longer than {max} characters (Limits:PromptLineCharacters)");
}
