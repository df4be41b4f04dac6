using OnlineAlign.Modeling.Checkpoints;

namespace OnlineAlign.Cli.Commands;

/// <summary>
/// Model folders named on a command line are read only as they resolved when the command started (<see cref="ModelFile.Pin"/>):
/// a link in them swapped while the command loads is refused on the open handle (<see cref="ModelFile.ConfineTo"/>), as a
/// silo refuses one swapped after its spec check.
/// </summary>
public static class CommandFiles
{
    public const string Scope = "the folders named on the command line (as resolved when the command started)";

    /// <summary>Until disposed, model files this thread opens must be the <paramref name="paths"/> (or inside them) as they resolve now.</summary>
    public static IDisposable Confine(params string?[] paths) => ModelFile.ConfineTo(ModelFile.Pin(paths), Scope);

    /// <summary>What <paramref name="load"/> returns, with its reads confined to <paramref name="paths"/> as they resolve now.</summary>
    public static T Load<T>(Func<T> load, params string?[] paths)
    {
        using (Confine(paths)) return load();
    }
}
