using System.Diagnostics.CodeAnalysis;
using OnlineAlign.Modeling.Checkpoints;
using OnlineAlign.Modeling.Scoring;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace OnlineAlign.Modeling;

/// <summary>
/// A reward model: the decoder's final hidden state at a response's last token, through a scalar head.
/// Saved as a Hugging Face causal-LM folder (the backbone) plus reward_head.safetensors ("score.weight").
/// </summary>
public sealed class RewardModel : nn.Module
{
    public const string HeadFile = "reward_head.safetensors";
    // A public field, not a property: TorchSharp registers submodules from fields, and the name is the checkpoint key.
    [SuppressMessage("Design", "CA1051", Justification = "TorchSharp module field; its name is the checkpoint key")]
    public readonly DecoderLM backbone;
    private readonly Linear score;

    /// <summary>A backbone with a new scalar head drawn from N(0, 0.02) with a generator seeded by <paramref name="seed"/>.</summary>
    public RewardModel(DecoderLM backbone, ulong seed = 0) : base(nameof(RewardModel))
    {
        this.backbone = backbone;
        score = nn.Linear(backbone.Config.HiddenSize, 1, hasBias: false);
        using (var generator = new Generator(seed))
        using (no_grad()) score.weight!.normal_(0, 0.02, generator);
        RegisterComponents();
        score.to(backbone.Device).to(backbone.DType);
    }

    /// <summary>Rewards [B] for (prompt, response) rows, with gradients.</summary>
    public Tensor Rewards(IReadOnlyList<PromptResponse> rows, int padTokenId = 0)
    {
        var (ids, _) = ResponseLogProbs.Batch(rows, padTokenId, backbone.Device);
        var hidden = backbone.Hidden(ids);                                            // right padding: causal is exact
        var last = tensor(rows.Select(r => (long)(r.Prompt.Length + r.Response.Length - 1)).ToArray(), device: backbone.Device);
        var picked = hidden.gather(1, last.view(-1, 1, 1).expand(-1, 1, hidden.shape[2])).squeeze(1);
        return score.forward(picked).squeeze(-1).to(ScalarType.Float32);
    }

    public void Save(string folder, IEnumerable<(string Name, string Content)>? tokenizerFiles = null)
    {
        HfCheckpoint.Save(backbone, folder, tokenizerFiles);
        SafeTensors.Write(Path.Combine(folder, HeadFile), new Dictionary<string, Tensor> { ["score.weight"] = score.weight! });
    }

    public static RewardModel Load(string folder, Device? device = null)
    {
        string head = Path.Combine(folder, HeadFile);
        if (!File.Exists(head)) throw new FileNotFoundException($"'{folder}' is not a reward model: it has no {HeadFile}", head);
        var model = new RewardModel(HfCheckpoint.Load(folder, device));
        var tensors = SafeTensors.Read(head);
        try
        {
            if (!tensors.TryGetValue("score.weight", out var w)) throw new InvalidDataException($"{head}: no 'score.weight' tensor");
            if (!w.shape.SequenceEqual(model.score.weight!.shape))
                throw new InvalidDataException($"{head}: tensor 'score.weight' has shape [{string.Join(", ", w.shape)}], the backbone needs [1, " +
                    $"{model.backbone.Config.HiddenSize}]");
            using (no_grad()) model.score.weight!.copy_(w);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
