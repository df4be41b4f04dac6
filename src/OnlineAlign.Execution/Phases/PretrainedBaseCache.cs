using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using static TorchSharp.torch;

namespace OnlineAlign.Execution.Phases;

/// <summary>
/// A built-in run's M0 (<see cref="WarmStart.Pretrained"/>) is a pure function of its model, task, seed, warm-start settings
/// and torch's thread count (which changes the rounding), so a judge phase that needs it every round builds it once per
/// cache folder: a worker silo's own (under its data folder, Silo:PretrainedCacheFolder), an in-process run's own. Never a
/// shared temp folder, where another user of the machine could plant weights.
/// An entry is a folder named by the SHA-256 of every input above (the key itself is kept in it and compared, so two
/// different specs never share one), written beside its final name and renamed into place whole, with a manifest holding
/// the weights' SHA-256 written last: a crash mid-write leaves a staging folder that is never read (and is swept), and an
/// entry whose weights do not match its manifest (torn, truncated, altered) is removed and rebuilt.
/// </summary>
public static class PretrainedBaseCache
{
    /// <summary>Part of the key: a change to how M0 is built must not load an older M0.</summary>
    private const string Version = "m0-v2";
    public const string ManifestFile = "m0.json";
    private const string StagingSuffix = ".partial";
    private static readonly TimeSpan StaleStaging = TimeSpan.FromHours(1);

    /// <summary>The entry's key: every input M0 depends on, in one line.</summary>
    public static string Key(ModelConfig config, string builtin, IVerifiableTask task, WarmStart.Settings s, int seed) =>
        $"{Version}|{builtin}|{JsonSerializer.Serialize(config)}|{task.Name}|{seed}|{JsonSerializer.Serialize(s)}|threads={get_num_threads()}";

    /// <summary>The entry's folder under <paramref name="cacheFolder"/>.</summary>
    public static string EntryFolder(string cacheFolder, string key) =>
        Path.Combine(cacheFolder, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key))));

    /// <summary>The entry's folder when it is there and whole (the prepare phase stores it with the run), else null.</summary>
    public static string? VerifiedFolder(string cacheFolder, ModelConfig config, string builtin, IVerifiableTask task, WarmStart.Settings s, int seed)
    {
        string key = Key(config, builtin, task, s, seed);
        string folder = EntryFolder(cacheFolder, key);
        return Directory.Exists(folder) && Verified(folder, key) ? folder : null;
    }

    public static DecoderLM Load(string cacheFolder, ModelConfig config, string builtin, IVerifiableTask task, WarmStart.Settings s, int seed,
        Device device, CancellationToken cancellationToken)
    {
        var tokenizer = new ByteTokenizer();
        string key = Key(config, builtin, task, s, seed);
        string folder = EntryFolder(cacheFolder, key);
        if (Directory.Exists(folder))
        {
            if (Verified(folder, key))
            {
                try { return HfCheckpoint.Load(folder, device); }
                catch (Exception e) when (e is IOException or InvalidDataException) { /* unreadable: rebuilt below */ }
            }
            Remove(folder); // torn or altered: never read again
        }
        var model = WarmStart.Pretrained(config, tokenizer, task, s, seed, cancellationToken);
        try
        {
            Directory.CreateDirectory(cacheFolder);
            SweepStaging(cacheFolder);
            string staging = $"{folder}.{Guid.NewGuid():N}{StagingSuffix}";
            string weights = HfCheckpoint.Save(model, staging, tokenizer.HfFiles());
            File.WriteAllText(Path.Combine(staging, ManifestFile), JsonSerializer.Serialize(new Manifest(key, weights)));
            try { Directory.Move(staging, folder); }
            catch (IOException) { Directory.Delete(staging, recursive: true); } // another phase put it there first
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* no cache: the model is still M0 */ }
        return model.Place(device);
    }

    private sealed record Manifest(string Key, string WeightsSha256);

    /// <summary>Whether the entry is whole: its manifest names this key and its weights hash to what the manifest says.</summary>
    private static bool Verified(string folder, string key)
    {
        try
        {
            var manifest = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(Path.Combine(folder, ManifestFile)));
            return manifest is not null && manifest.Key == key
                && manifest.WeightsSha256 == Sha256(Path.Combine(folder, HfCheckpoint.WeightsFile));
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { return false; }
    }

    private static string Sha256(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Moves the entry aside first (a rename is atomic), so a concurrent reader never sees it half deleted.</summary>
    private static void Remove(string folder)
    {
        try
        {
            string aside = $"{folder}.{Guid.NewGuid():N}{StagingSuffix}";
            Directory.Move(folder, aside);
            Directory.Delete(aside, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* another phase removed or replaced it */ }
    }

    /// <summary>Staging folders a crashed write left behind (an hour old: no write in progress takes that long to save).</summary>
    private static void SweepStaging(string cacheFolder)
    {
        foreach (var staging in Directory.EnumerateDirectories(cacheFolder, "*" + StagingSuffix))
        {
            try
            {
                if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(staging) > StaleStaging) Directory.Delete(staging, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* still in use or gone */ }
        }
    }
}
