using static TorchSharp.torch;

namespace OnlineAlign.Modeling;

/// <summary>
/// Fixes how many CPU threads torch's kernels split their work over, for the whole process. On CPU a
/// reduction or a matrix product split over 1 or 2 threads rounds differently (a round trained with 1 and
/// with 2 threads ends with different weights), so a result can only be reproduced, and a resumed round
/// only equal the uninterrupted one, when every run of it used the same count. Pinning sets the count
/// explicitly once, before any tensor work; every thread that computes later picks it up.
/// </summary>
public static class TorchThreads
{
    public const int Limit = 1024;

    /// <summary>Pins the count (0: torch's default, the machine's cores) and returns it.</summary>
    public static int Pin(int threads)
    {
        if (threads < 0 || threads > Limit)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, $"torch threads must be 0 (torch's default) to {Limit}");
        int count = threads > 0 ? threads : get_num_threads();
        set_num_threads(count);
        return count;
    }
}
