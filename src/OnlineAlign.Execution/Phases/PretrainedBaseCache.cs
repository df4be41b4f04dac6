using System.Security.Cryptography;
using System.Text;
using OnlineAlign.Alignment.Rounds;
using OnlineAlign.Alignment.Tasks;
using OnlineAlign.Modeling;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Tokenization;
using static TorchSharp.torch;

namespace OnlineAlign.Execution.Phases;

/// <summary>
/// A built-in run's M0 (<see cref="WarmStart.Pretrained"/>) is a pure function of its model, task, seed, pretraining settings
/// and torch's thread count (which changes the rounding), so a judge phase that needs it every round rebuilds it once per
/// machine: the weights are kept in a folder of the temp directory named by a hash of those inputs. A folder appears whole
/// (written beside it, then moved into place), so a concurrent phase either finds it or builds its own identical copy.
/// </summary>
public static class PretrainedBaseCache
{
    /// <summary>Part of the key: a change to how M0 is built must not load an older M0.</summary>
    private const string Version = "m0-v1";

    public static DecoderLM Load(ModelConfig config, string builtin, IVerifiableTask task, WarmStart.Settings s, int seed, Device device,
        CancellationToken cancellationToken)
    {
        var tokenizer = new ByteTokenizer();
        string key = $"{Version}|{builtin}|{task.Name}|{seed}|{s.PretrainSteps}|{s.Demonstrations}|{s.BatchSize}|{s.LearningRate:R}|{get_num_threads()}";
        string folder = Path.Combine(Path.GetTempPath(), "onlinealign-m0", Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..32]);
        if (File.Exists(Path.Combine(folder, HfCheckpoint.WeightsFile)))
        {
            try { return HfCheckpoint.Load(folder, device); }
            catch (Exception e) when (e is IOException or InvalidDataException) { /* unreadable: rebuilt below */ }
        }
        var model = WarmStart.Pretrained(config, tokenizer, task, s, seed, cancellationToken);
        try
        {
            string staging = $"{folder}.{Guid.NewGuid():N}";
            HfCheckpoint.Save(model, staging, tokenizer.HfFiles());
            try { Directory.Move(staging, folder); }
            catch (IOException) { Directory.Delete(staging, recursive: true); } // another phase put it there first
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* no cache: the model is still M0 */ }
        return model.Place(device);
    }
}
