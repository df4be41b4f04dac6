#!/usr/bin/env python3
"""What-if calibration of the label-free guard's KL bound (guard.max_kl_initial) from align bench logs.

The align bench logs, per round, the health signals and what the product's GuardDecision decided with the spec's
thresholds (the run is never stopped). This script asks: had `max_kl_initial` been T instead, which round would the
guard have kept? A round trips when the logged decision tripped (the other thresholds, unchanged) or its
health/kl_initial exceeds T -- GuardDecision's rule is "any threshold crossed", so this is that rule with one bound
changed -- and the guard keeps the round before the first round that tripped (the last round when none did).

T is chosen on the validation stream of the choosing seeds (the largest T among those with the best mean validation
change over round 0), then reported on the test stream of the confirming seeds, paired by seed:

    python3 guard_calibration.py LOGS --choose-seeds 6-9 --confirm-seeds 10-15
"""
import sys

from align_summary import interval, mean, parse, seed_range

GRID = [5, 2, 1, 0.5, 0.3, 0.25, 0.2, 0.15, 0.1, 0.075, 0.05, 0.02]


def kept_round(rounds, trips, health, bound):
    for k in sorted(health):
        if trips.get(k) or health[k].get("health/kl_initial", 0.0) > bound:
            return k - 1
    return max(rounds)


def changes(runs, guards, seeds, bound, stream):
    """Per (task, seed) in seeds: the kept round's accuracy on the stream (0 validation, 1 test) minus round 0's."""
    out = []
    for key, by_seed in sorted(guards.items()):
        for seed, (_, trips, health) in sorted(by_seed.items()):
            rounds = runs[key].get(seed)
            if seed in seeds and rounds:
                k = kept_round(rounds, trips, health, bound)
                out.append(rounds[k][stream] - rounds[0][stream])
    return out


def main(folder, choose, confirm):
    runs, _, guards = parse(folder)
    print(f"Logs: {folder}; choosing seeds {sorted(choose)} (validation), confirming seeds {sorted(confirm)} (test)\n")
    print("| max_kl_initial | choosing seeds: validation change | confirming seeds: test change | runs |\n|---|---|---|---|")
    chosen, best = None, float("-inf")
    for bound in GRID:
        picked = changes(runs, guards, choose, bound, 0)
        confirmed = changes(runs, guards, confirm, bound, 1)
        print(f"| {bound} | {interval(picked, True)} | {interval(confirmed, True)} | {len(picked)} / {len(confirmed)} |")
        if picked and mean(picked) > best:   # the grid runs from large to small: a tie keeps the larger bound
            chosen, best = bound, mean(picked)
    if chosen is not None:
        print(f"\nChosen on validation: max_kl_initial {chosen} (mean validation change {best:+.1f}); on the confirming seeds' "
              f"test stream: {interval(changes(runs, guards, confirm, chosen, 1), True)} points against round 0.")


if __name__ == "__main__":
    args = sys.argv[1:]
    opts = {args[i]: args[i + 1] for i in range(1, len(args) - 1, 2)}
    main(args[0], seed_range(opts.get("--choose-seeds", "1-5")), seed_range(opts.get("--confirm-seeds", "6-15")))
