namespace OnlineAlign.Alignment.Training;

/// <summary>One training pair with the reference log-probs computed once per round, before training.</summary>
/// <param name="WinChosen">SPPO: the chosen response's estimated win rate against its prompt's responses</param>
/// <param name="Explore">SELM: a response to the prompt sampled from the round's start policy, with its reference log-prob</param>
public sealed record PairExample(int[] Prompt, int[] Chosen, int[] Rejected, double ReferenceChosen, double ReferenceRejected, double Consistency = 1.0,
    int Stage = 0, double WinChosen = 1.0, double WinRejected = 0.0, int[]? Explore = null, double ReferenceExplore = 0);
